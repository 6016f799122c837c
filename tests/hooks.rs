//! Forward hooks and `ActivationStats` (lesson 06), as a user's crate uses them.

use candle_core::{Device, Tensor};
use minibatch::{register_forward_hook, ActivationStats, Linear, Module, ReLU, Rng, Sequential};
use std::sync::{Arc, Mutex};

#[test]
fn a_hook_sees_its_layers_own_output_and_goes_with_its_handle() {
    let mut rng = Rng::new(1);
    let model = Sequential::new()
        .add(Linear::new(5, 16, &mut rng).unwrap())
        .add(ReLU)
        .add(Linear::new(16, 3, &mut rng).unwrap());
    let values: Vec<f32> = (0..40).map(|_| rng.normal() as f32).collect();
    let x = Tensor::from_vec(values, (8, 5), &Device::Cpu).unwrap();
    let before: Vec<f32> = model.forward(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let handle = register_forward_hook(model.layers()[0].as_ref(), move |_module, input, output| {
        log.lock().unwrap().push((input.dims().to_vec(), output.flatten_all().unwrap().to_vec1::<f32>().unwrap()));
    })
    .unwrap();
    let hooked: Vec<f32> = model.forward(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(hooked, before, "a hook does not change the result");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, [8, 5]);
        assert!(seen[0].1.iter().any(|&v| v < 0.0), "the Linear's output, before the ReLU that follows it");
    }
    drop(handle);
    model.forward(&x).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1, "dropping the handle removed the hook");
}

#[test]
fn a_zero_sized_layer_is_hooked_through_its_slot_alone_or_by_its_type() {
    let mut rng = Rng::new(2);
    let model = Sequential::new()
        .add(Linear::new(4, 6, &mut rng).unwrap())
        .add(ReLU)
        .add(Linear::new(6, 6, &mut rng).unwrap())
        .add(ReLU)
        .add(minibatch::Flatten);
    let x = Tensor::from_vec((0..12).map(|i| i as f32 - 6.0).collect::<Vec<_>>(), (3, 4), &Device::Cpu).unwrap();
    let outputs = |layers: &[usize]| -> Vec<Vec<f32>> {
        let mut y = x.clone();
        let mut out = Vec::new();
        for (i, layer) in model.layers().iter().enumerate() {
            y = layer.forward(&y).unwrap();
            if layers.contains(&i) {
                out.push(y.flatten_all().unwrap().to_vec1().unwrap());
            }
        }
        out
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = |seen: &Arc<Mutex<Vec<Vec<f32>>>>| {
        let log = seen.clone();
        move |_: &dyn Module, _: &Tensor, y: &Tensor| {
            log.lock().unwrap().push(y.flatten_all().unwrap().to_vec1().unwrap())
        }
    };
    // The second ReLU's slot: that layer alone, its own output.
    let slot: &dyn Module = &model.layers()[3];
    let handle = register_forward_hook(slot, record(&seen)).unwrap();
    model.forward(&x).unwrap();
    assert_eq!(*seen.lock().unwrap(), outputs(&[3]));
    drop(handle);
    // The ReLU itself: every ReLU of the model.
    seen.lock().unwrap().clear();
    let every = register_forward_hook(&ReLU, record(&seen)).unwrap();
    model.forward(&x).unwrap();
    assert_eq!(*seen.lock().unwrap(), outputs(&[1, 3]));
    drop(every);
    // A Flatten, as the lesson's Lambda-like layers are.
    seen.lock().unwrap().clear();
    let flat: &dyn Module = &model.layers()[4];
    let _flat = register_forward_hook(flat, record(&seen)).unwrap();
    model.forward(&x).unwrap();
    assert_eq!(*seen.lock().unwrap(), outputs(&[4]));
}

#[test]
fn activation_stats_record_every_training_batch_and_no_validation_batch() {
    let model = minibatch::cnn(false, 10, 0).unwrap();
    let stats = ActivationStats::new(&model, Default::default()).unwrap();
    let mut rng = Rng::new(2);
    let images: Vec<(Vec<f32>, u8)> =
        (0..96).map(|i| ((0..784).map(|_| rng.next_f64() as f32).collect(), (i % 10) as u8)).collect();
    let data = minibatch::VecDataset(images);
    let (train, valid) =
        (minibatch::DataLoader::new(data.clone(), 32).unwrap(), minibatch::DataLoader::new(data, 48).unwrap());
    let mut opt = minibatch::Sgd::new(model.parameters(), 0.1).unwrap();
    minibatch::fit(2, &model, minibatch::cross_entropy, &mut opt, &train, &valid).unwrap();
    let layers = stats.layers();
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["0", "1", "2", "3", "4", "5", "7"], "every child but the zero-sized Flatten");
    for l in &layers {
        assert_eq!(l.means.len(), 6, "3 training batches a epoch, 2 epochs: layer {}", l.name);
        assert_eq!(l.histograms.len(), 6);
    }
    // Block 1 ends in a ReLU: no negative mean, and its histogram holds all 32 x 8 x 14 x 14 values.
    let block = &layers[1];
    assert!(block.means.iter().all(|&m| m >= 0.0) && block.stds.iter().all(|&s| s > 0.0));
    assert_eq!(block.histograms[0].iter().sum::<u32>(), 32 * 8 * 14 * 14);
    assert!(block.near_zero().iter().all(|&f| (0.0..=1.0).contains(&f) && f > 0.1), "{:?}", block.near_zero());
}

#[test]
fn a_hook_follows_its_module_when_moved_and_never_fires_on_another() {
    let seen = Arc::new(Mutex::new(0));
    let log = seen.clone();
    let layer = Linear::new(3, 2, &mut Rng::new(0)).unwrap();
    let handle = register_forward_hook(&layer, move |_, _, _| *log.lock().unwrap() += 1).unwrap();
    let x = Tensor::zeros((1, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let moved = vec![Box::new(layer)];
    minibatch::forward_with_hooks(moved[0].as_ref(), &x).unwrap();
    assert_eq!(*seen.lock().unwrap(), 1, "the hook follows the layer into a Box and a Vec");
    drop(moved);
    // Whatever address a new layer gets, it is not the dropped one for the hook.
    for seed in 0..20 {
        let other = Box::new(Linear::new(3, 2, &mut Rng::new(seed)).unwrap());
        minibatch::forward_with_hooks(other.as_ref(), &x).unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), 1);
    drop(handle);
}

#[test]
fn a_hook_receives_its_module_and_reads_its_mode_as_the_lesson_does() {
    // Lesson 06's `append_stats` records only `if mod.training`: the hook is given the module.
    let mut rng = Rng::new(3);
    let block = || Sequential::new().add(Linear::new(4, 4, &mut Rng::new(9)).unwrap()).add(ReLU);
    let model = Sequential::new().add(block()).add(Linear::new(4, 2, &mut rng).unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let _h = register_forward_hook(model.layers()[0].as_ref(), move |module, _, _| {
        log.lock().unwrap().push((module.type_name(), module.is_training()));
    })
    .unwrap();
    let x = Tensor::ones((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    model.forward(&x).unwrap();
    model.eval();
    model.forward(&x).unwrap();
    model.train();
    model.forward(&x).unwrap();
    let expected = [true, false, true].map(|t| ("Sequential".to_string(), Some(t)));
    assert_eq!(*seen.lock().unwrap(), expected);
    // A layer that behaves the same in both modes keeps no flag; its container says the mode.
    assert_eq!(model.layers()[1].is_training(), None);
}

#[test]
fn a_derived_model_answers_its_mode_from_its_own_flag_or_its_children() {
    use minibatch::{Registered, TrainingMode};
    #[derive(Registered)]
    struct Own {
        #[module(training)]
        mode: TrainingMode,
    }
    impl Module for Own {
        fn forward(&self, x: &Tensor) -> minibatch::Result<Tensor> {
            Ok(x.clone())
        }
    }
    #[derive(Registered)]
    struct Outer {
        head: Linear,
        body: Sequential,
    }
    impl Module for Outer {
        fn forward(&self, x: &Tensor) -> minibatch::Result<Tensor> {
            self.head.forward(&self.body.forward(x)?)
        }
    }
    let own = Own { mode: TrainingMode::default() };
    let outer = Outer { head: Linear::new(2, 2, &mut Rng::new(0)).unwrap(), body: Sequential::new() };
    assert_eq!((own.is_training(), outer.is_training()), (Some(true), Some(true)));
    own.eval();
    outer.eval();
    assert_eq!((own.is_training(), outer.is_training()), (Some(false), Some(false)));
}
