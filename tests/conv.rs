//! `Conv2d` against PyTorch (`tests/golden/conv.json`, from `make_golden.py`'s `conv()`): the
//! forward, the input, weight and bias gradients and the repr, for stride 2 with padding on odd
//! sizes (the lesson's blocks), a bias-free layer and groups (strided too, on maps whose sides leave
//! different remainders), and 3x3 convolutions at stride 1 padded 1 (run directly, without
//! unfolding).

mod common;
use common::*;
use minibatch::{Conv2d, Conv2dConfig, Module, Param};

#[test]
fn conv2d_matches_pytorch_values_gradients_and_repr() {
    let g = golden("conv.json");
    for case in g["cases"].as_array().unwrap() {
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let config =
            Conv2dConfig { stride: n("stride"), padding: n("padding"), groups: n("groups"), ..Default::default() };
        let bias = case.get("bias").map(tensor);
        let conv = Conv2d::from_tensors(tensor(&case["weight"]), bias, config).unwrap();
        let name = case["repr"].as_str().unwrap();
        assert_eq!(conv.to_string(), name);
        let x = Param::new(&tensor(&case["x"])).unwrap();
        let y = conv.forward(&x.tensor()).unwrap();
        assert_eq!(y.dims(), tensor(&case["y"]).dims(), "{name}");
        assert_close(&format!("{name} y"), &flat(&y), &golden_flat(&case["y"]), 1e-5, 1e-5);
        let loss = (y * tensor(&case["w"])).unwrap().sum_all().unwrap();
        let mut params = conv.parameters();
        params.push(x.clone());
        minibatch::backward(&loss, &params).unwrap();
        let grad = |p: &Param| flat(&p.grad().unwrap());
        assert_close(
            &format!("{name} grad weight"),
            &grad(conv.weight()),
            &golden_flat(&case["grad_weight"]),
            1e-4,
            1e-4,
        );
        assert_close(&format!("{name} grad x"), &grad(&x), &golden_flat(&case["grad_x"]), 1e-4, 1e-4);
        if let Some(b) = conv.bias() {
            assert_close(&format!("{name} grad bias"), &grad(b), &golden_flat(&case["grad_bias"]), 1e-4, 1e-4);
        }
    }
}

#[test]
fn conv2d_names_init_and_shape_errors() {
    let mut rng = minibatch::Rng::new(0);
    let conv = Conv2d::new(8, 16, 3, Conv2dConfig { stride: 2, padding: 1, ..Default::default() }, &mut rng).unwrap();
    let names: Vec<String> = conv.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight", "bias"]);
    let bound = 1.0 / (8.0f64 * 9.0).sqrt();
    assert!(flat(&conv.weight().tensor()).iter().all(|w| w.abs() <= bound), "PyTorch's default bound");
    let x = candle_core::Tensor::zeros((2, 3, 7, 7), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let err = conv.forward(&x).unwrap_err().to_string();
    assert!(err.starts_with("Conv2d(8, 16, kernel_size=(3, 3)") && err.contains("got input [2, 3, 7, 7]"), "{err}");
    assert!(Conv2d::new(6, 4, 3, Conv2dConfig { groups: 4, ..Default::default() }, &mut rng).is_err());
    // Given weights: 5 output channels do not split into 3 groups (PyTorch refuses them too).
    let w = candle_core::Tensor::zeros((5, 1, 3, 3), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let err = Conv2d::from_tensors(w, None, Conv2dConfig { groups: 3, ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("5 output channels"), "{err}");
}

#[test]
fn max_pooling_with_absurd_sizes_does_not_overflow() {
    // One window as large as the address space covers the whole (padded) plane once; a kernel
    // past the padded plane is refused.
    let x = candle_core::Tensor::ones((1, 1, 4, 4), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let y = minibatch::MaxPool2d::new(usize::MAX, usize::MAX, usize::MAX / 2).forward(&x).unwrap();
    assert_eq!((y.dims(), flat(&y)), (&[1, 1, 1, 1][..], vec![1.0]));
    let err = minibatch::MaxPool2d::new(usize::MAX, 1, 0).forward(&x).unwrap_err();
    assert!(err.to_string().contains("max_pool2d"), "{err}");
}

#[test]
fn adaptive_average_pooling_matches_pytorch_for_sizes_that_do_not_divide() {
    let g = golden("pool.json");
    for case in g["cases"].as_array().unwrap() {
        let size: Vec<usize> = case["size"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let pool = minibatch::AdaptiveAvgPool2d::new(size[0], size[1]);
        let x = Param::new(&tensor(&g["x"])).unwrap();
        let y = pool.forward(&x.tensor()).unwrap();
        assert_close(&format!("{size:?} y"), &flat(&y), &golden_flat(&case["y"]), 1e-6, 1e-5);
        let loss = (y * tensor(&case["w"])).unwrap().sum_all().unwrap();
        minibatch::backward(&loss, std::slice::from_ref(&x)).unwrap();
        assert_close(&format!("{size:?} grad"), &flat(&x.grad().unwrap()), &golden_flat(&case["grad_x"]), 1e-6, 1e-5);
    }
    assert_eq!(minibatch::AdaptiveAvgPool2d::new(1, 1).to_string(), "AdaptiveAvgPool2d(output_size=1)");
}

/// The lesson's CNN (notebook 06), as PyTorch writes it, so that weights move under the same names.
fn lesson_cnn(seed: u64) -> minibatch::Sequential {
    use minibatch::{AdaptiveAvgPool2d, Flatten, Linear, ReLU, Sequential, View};
    let mut rng = minibatch::Rng::new(seed);
    let mut model = Sequential::new().add(View::new(&[-1, 1, 28, 28]));
    for (inp, out, k) in [(1, 8, 5), (8, 16, 3), (16, 32, 3), (32, 32, 3)] {
        let config = Conv2dConfig { stride: 2, padding: k / 2, ..Default::default() };
        model = model.add(Sequential::new().add(Conv2d::new(inp, out, k, config, &mut rng).unwrap()).add(ReLU));
    }
    model.add(AdaptiveAvgPool2d::new(1, 1)).add(Flatten).add(Linear::new(32, 10, &mut rng).unwrap())
}

#[test]
fn the_lessons_cnn_has_pytorchs_names_and_learns() {
    let model = lesson_cnn(0);
    let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
    let want: Vec<String> = (1..=4)
        .flat_map(|i| [format!("{i}.0.weight"), format!("{i}.0.bias")])
        .chain(["7.weight".to_string(), "7.bias".to_string()])
        .collect();
    assert_eq!(names, want);
    // Lesson 06's fix for a CNN that does not start to learn: Kaiming's initialisation.
    let mut rng = minibatch::Rng::new(1);
    for (name, p) in model.named_parameters() {
        let dims = p.dims().to_vec();
        if name.ends_with("weight") && dims.len() == 4 {
            p.set(&minibatch::init::kaiming_normal(&dims, 0.0, minibatch::init::Fan::In, &mut rng).unwrap()).unwrap();
        } else if name.ends_with("bias") {
            p.set(&candle_core::Tensor::zeros(dims, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap())
                .unwrap();
        }
    }
    let data = minibatch::Mnist::load(mnist_dir()).unwrap();
    let (train_dl, valid_dl) =
        minibatch::get_dls(data.train.slice(0, 4096).unwrap(), data.valid.slice(0, 1000).unwrap(), 64).unwrap();
    let mut opt = minibatch::Sgd::new(model.parameters(), 0.4).unwrap();
    let stats = minibatch::fit(2, &model, minibatch::cross_entropy, &mut opt, &train_dl, &valid_dl).unwrap();
    assert!(stats[1].valid_accuracy > 0.6, "{:?}", stats);
}

#[test]
fn max_pooling_matches_pytorch_where_candles_backward_is_wrong() {
    let g = golden("max_pool.json");
    for case in g["cases"].as_array().unwrap() {
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let pool = minibatch::MaxPool2d::new(n("kernel"), n("stride"), n("padding"));
        let name = case["repr"].as_str().unwrap();
        assert_eq!(pool.to_string(), name);
        let x = Param::new(&tensor(&case["x"])).unwrap();
        let y = pool.forward(&x.tensor()).unwrap();
        assert_eq!(y.dims(), tensor(&case["y"]).dims(), "{name}");
        assert_close(&format!("{name} y"), &flat(&y), &golden_flat(&case["y"]), 0.0, 1e-7);
        let loss = (y * tensor(&case["w"])).unwrap().sum_all().unwrap();
        minibatch::backward(&loss, std::slice::from_ref(&x)).unwrap();
        assert_close(&format!("{name} grad"), &flat(&x.grad().unwrap()), &golden_flat(&case["grad_x"]), 1e-6, 1e-6);
    }
    let nan = candle_core::Tensor::new(&[[[[1f32, f32::NAN], [3., 2.]]]], &candle_core::Device::Cpu).unwrap();
    assert!(
        flat(&minibatch::MaxPool2d::new(2, 2, 0).forward(&nan).unwrap())[0].is_nan(),
        "NaN is the maximum, as in PyTorch"
    );
}

/// A pooling after a convolution (lesson 11's stem, its shortcuts) reads the convolution's
/// output as the library stores it; a pooling of a copy the user made reads that. Both give the
/// same bits, forward and backward, on maps large enough to be split between threads.
#[test]
fn pooling_a_convolutions_output_gives_the_bits_of_pooling_a_copy() {
    let normal = |dims: &[usize], rng: &mut minibatch::Rng| {
        let v: Vec<f32> = (0..dims.iter().product()).map(|_| rng.normal() as f32).collect();
        candle_core::Tensor::from_vec(v, dims, &candle_core::Device::Cpu).unwrap()
    };
    let mut rng = minibatch::Rng::new(5);
    let conv = Conv2d::new(3, 16, 3, Conv2dConfig { padding: 1, ..Default::default() }, &mut rng).unwrap();
    let x = Param::new(&normal(&[32, 3, 30, 30], &mut rng)).unwrap();
    let pools: [(&str, Box<dyn Module>); 3] = [
        ("max 3/2/1", Box::new(minibatch::MaxPool2d::new(3, 2, 1))),
        ("max 2/2/0", Box::new(minibatch::MaxPool2d::new(2, 2, 0))),
        ("avg 2/2/0", Box::new(minibatch::AvgPool2d::new(2, 2, 0).ceil_mode(true))),
    ];
    for (name, pool) in pools {
        let run = |copy: bool| {
            let y = conv.forward(&x.tensor()).unwrap();
            let y = if copy { y.copy().unwrap() } else { y };
            let z = pool.forward(&y).unwrap();
            let w = normal(z.dims(), &mut minibatch::Rng::new(9));
            minibatch::backward(&(&z * w).unwrap().sum_all().unwrap(), std::slice::from_ref(&x)).unwrap();
            let grad = flat(&x.grad().unwrap());
            x.zero_grad();
            (flat(&z), grad)
        };
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>(); // f32 widened: exact
        let ((z, g), (z_copy, g_copy)) = (run(false), run(true));
        assert!(bits(&z) == bits(&z_copy), "{name}: outputs differ");
        assert!(bits(&g) == bits(&g_copy), "{name}: input gradients differ");
    }
}

#[test]
fn max_pooling_sends_the_gradient_where_pytorch_does_on_ties_and_nans() {
    // PyTorch's rule: the first maximum in row-major order on a tie, the last NaN of a window.
    let g = golden("max_pool_ties.json");
    let values = |v: &serde_json::Value| -> Vec<f32> {
        v["data"].as_array().unwrap().iter().map(|d| d.as_f64().map_or(f32::NAN, |d| d as f32)).collect()
    };
    for case in g["cases"].as_array().unwrap() {
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let side = (values(&case["x"]).len() as f64).sqrt() as usize;
        let x = candle_core::Tensor::from_vec(values(&case["x"]), (1, 1, side, side), &candle_core::Device::Cpu);
        let x = Param::new(&x.unwrap()).unwrap();
        let y = minibatch::MaxPool2d::new(n("kernel"), n("stride"), n("padding")).forward(&x.tensor()).unwrap();
        let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
        assert!(got.iter().zip(values(&case["y"])).all(|(&a, b)| same(a, b)), "{got:?}");
        minibatch::backward(&y.sum_all().unwrap(), std::slice::from_ref(&x)).unwrap();
        let grad: Vec<f32> = x.grad().unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(grad, values(&case["grad_x"]), "kernel {} stride {}", n("kernel"), n("stride"));
    }
}

#[test]
fn average_pooling_matches_pytorch_for_any_kernel_stride_and_padding() {
    let g = golden("avg_pool.json");
    for case in g["cases"].as_array().unwrap() {
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let pool = minibatch::AvgPool2d::new(n("kernel"), n("stride"), n("padding"))
            .ceil_mode(case["ceil_mode"].as_bool().unwrap())
            .count_include_pad(case["count_include_pad"].as_bool().unwrap());
        let name = format!("{} {}", case["repr"].as_str().unwrap(), case["count_include_pad"]);
        assert_eq!(pool.to_string(), case["repr"].as_str().unwrap());
        let x = Param::new(&tensor(&case["x"])).unwrap();
        let y = pool.forward(&x.tensor()).unwrap();
        assert_eq!(y.dims(), tensor(&case["y"]).dims(), "{name}");
        assert_close(&format!("{name} y"), &flat(&y), &golden_flat(&case["y"]), 1e-6, 1e-6);
        let loss = (y * tensor(&case["w"])).unwrap().sum_all().unwrap();
        minibatch::backward(&loss, std::slice::from_ref(&x)).unwrap();
        assert_close(&format!("{name} grad"), &flat(&x.grad().unwrap()), &golden_flat(&case["grad_x"]), 1e-6, 1e-6);
    }
}

#[test]
fn average_pooling_with_ceil_mode_takes_maps_smaller_than_its_kernel_and_empty_batches() {
    // xresnet's shortcut pooling on the small maps of its last stages (a 16x16 picture reaches
    // 1x1 before the last strided block), as PyTorch computes it.
    let pool = minibatch::AvgPool2d::new(2, 2, 0).ceil_mode(true);
    for case in golden("avg_pool_small.json")["cases"].as_array().unwrap() {
        let x = Param::new(&tensor(&case["x"])).unwrap();
        let y = pool.forward(&x.tensor()).unwrap();
        let what = format!("{:?}", x.dims());
        assert_eq!(y.dims(), tensor(&case["y"]).dims(), "{what}");
        assert_close(&format!("{what} y"), &flat(&y), &golden_flat(&case["y"]), 1e-6, 1e-6);
        minibatch::backward(&(y * tensor(&case["w"])).unwrap().sum_all().unwrap(), std::slice::from_ref(&x)).unwrap();
        assert_close(&format!("{what} grad"), &flat(&x.grad().unwrap()), &golden_flat(&case["grad_x"]), 1e-6, 1e-6);
    }
    let empty = candle_core::Tensor::zeros((0, 3, 4, 4), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    assert_eq!(pool.forward(&empty).unwrap().dims(), [0, 3, 2, 2]);
    let too_small =
        candle_core::Tensor::zeros((1, 1, 1, 1), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    assert!(minibatch::AvgPool2d::new(2, 2, 0).forward(&too_small).is_err(), "without ceil_mode, as in PyTorch");
}

#[test]
fn the_fused_convolution_matches_candles_with_relu_dilation_and_no_bias() {
    use minibatch::{ReLU, Sequential};
    let mut rng = minibatch::Rng::new(11);
    for (stride, padding, dilation, bias) in [(1, 1, 1, true), (2, 2, 2, false), (3, 0, 1, true)] {
        let config = Conv2dConfig { stride, padding, dilation, bias, ..Default::default() };
        let model = Sequential::new()
            .add(Conv2d::new(3, 5, 3, config, &mut rng).unwrap())
            .add(ReLU)
            .add(Conv2d::new(5, 4, 3, Conv2dConfig { padding: 1, ..Default::default() }, &mut rng).unwrap());
        let x = Param::new(&tensor(&golden("conv.json")["cases"][0]["x"])).unwrap();
        let what = format!("stride {stride} dilation {dilation}");
        assert_fused_matches_candle(
            &what,
            || output_and_grads(&model, &x.tensor(), std::slice::from_ref(&x)),
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn a_wide_convolutions_weight_gradient_matches_candles() {
    // 16 channels x 3 x 3 = 144 taps: the weight gradient is multiplied into a column-major
    // destination and transposed into the weight's layout.
    let mut rng = minibatch::Rng::new(12);
    let conv = Conv2d::new(16, 8, 3, Conv2dConfig { stride: 2, padding: 1, ..Default::default() }, &mut rng).unwrap();
    let values: Vec<f32> = (0..3 * 16 * 7 * 7).map(|_| rng.normal() as f32).collect();
    let x =
        Param::new(&candle_core::Tensor::from_vec(values, (3, 16, 7, 7), &candle_core::Device::Cpu).unwrap()).unwrap();
    assert_fused_matches_candle(
        "144 taps",
        || output_and_grads(&conv, &x.tensor(), std::slice::from_ref(&x)),
        1e-4,
        1e-4,
    );
}

#[test]
fn convolutions_on_maps_smaller_than_their_kernel_match_candles() {
    // A 3x3 kernel with padding 1 reads a 1x1 map through its centre alone: the layer multiplies
    // by that tap only, and the others' weight gradient is zero. A 2x2 map at stride 2 is read
    // through four taps, a 3x3 one through all nine.
    let mut rng = minibatch::Rng::new(13);
    for (side, stride) in [(1, 1), (2, 2), (3, 2)] {
        let conv = Conv2d::new(16, 8, 3, Conv2dConfig { stride, padding: 1, ..Default::default() }, &mut rng).unwrap();
        let values: Vec<f32> = (0..4 * 16 * side * side).map(|_| rng.normal() as f32).collect();
        let x = candle_core::Tensor::from_vec(values, (4, 16, side, side), &candle_core::Device::Cpu).unwrap();
        let x = Param::new(&x).unwrap();
        assert_fused_matches_candle(
            &format!("{side}x{side} map, stride {stride}"),
            || output_and_grads(&conv, &x.tensor(), std::slice::from_ref(&x)),
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn the_lessons_cnns_match_candles_operations_through_the_chained_layers() {
    // Blocks of Sequential(Conv2d, [BatchNorm2d,] ReLU) hand channel-major activations on to
    // each other; the loss and every gradient must be what candle's own operations give.
    let mut rng = minibatch::Rng::new(3);
    let values: Vec<f32> = (0..6 * 784).map(|_| rng.next_f64() as f32).collect();
    let x = candle_core::Tensor::from_vec(values, (6, 784), &candle_core::Device::Cpu).unwrap();
    for batch_norm in [false, true] {
        let model = minibatch::cnn(batch_norm, 10, 1).unwrap();
        let what = format!("batch norm {batch_norm}");
        assert_fused_matches_candle(&what, || output_and_grads(&model, &x, &[]), 1e-4, 1e-3);
    }
}

/// A user's own convolutional model, candle's `relu` between its layers.
#[derive(minibatch::Registered)]
struct OwnCnn {
    conv1: Conv2d,
    norm: minibatch::BatchNorm,
    conv2: Conv2d,
}

impl minibatch::Module for OwnCnn {
    fn forward(&self, x: &candle_core::Tensor) -> minibatch::Result<candle_core::Tensor> {
        let h = self.conv1.forward(&x.reshape((x.dims()[0], 1, 28, 28))?)?.relu()?;
        let h = self.norm.forward(&h)?.relu()?;
        Ok(self.conv2.forward(&h)?.relu()?.mean((2, 3))?)
    }
}

#[test]
fn a_derived_cnn_with_candles_relu_matches_candles_operations() {
    let mut rng = minibatch::Rng::new(5);
    let config = Conv2dConfig { stride: 2, padding: 1, ..Default::default() };
    let model = OwnCnn {
        conv1: Conv2d::new(1, 8, 3, config, &mut rng).unwrap(),
        norm: minibatch::BatchNorm::new_2d(8).unwrap(),
        conv2: Conv2d::new(8, 16, 3, config, &mut rng).unwrap(),
    };
    let values: Vec<f32> = (0..4 * 784).map(|_| rng.normal() as f32).collect();
    let x = candle_core::Tensor::from_vec(values, (4, 784), &candle_core::Device::Cpu).unwrap();
    assert_fused_matches_candle("derived CNN", || output_and_grads(&model, &x, &[]), 1e-4, 1e-3);
}

#[test]
fn empty_batches_give_empty_outputs_and_impossible_sizes_are_errors() {
    use candle_core::{DType, Device, Tensor};
    let empty = Tensor::zeros((0, 784), DType::F32, &Device::Cpu).unwrap();
    for batch_norm in [false, true] {
        let model = minibatch::cnn(batch_norm, 10, 0).unwrap();
        model.eval();
        assert_eq!(model.forward(&empty).unwrap().dims(), &[0, 10]);
        let plain = minibatch::fast::with_candle_ops(|| model.forward(&empty)).unwrap();
        assert_eq!(plain.dims(), &[0, 10], "the reference path too");
    }
    let mut rng = minibatch::Rng::new(0);
    let conv = Conv2d::new(1, 4, 5, Conv2dConfig::default(), &mut rng).unwrap();
    let small = Tensor::zeros((2, 1, 3, 3), DType::F32, &Device::Cpu).unwrap();
    let err = conv.forward(&small).unwrap_err().to_string();
    assert!(err.contains("at least 5x5"), "{err}");
    let wrong = Tensor::zeros((2, 1, 9, 9), DType::F64, &Device::Cpu).unwrap();
    assert!(conv.forward(&wrong).unwrap_err().to_string().contains("F32, as its weight"));
}

#[test]
fn convolutions_whose_output_could_not_be_held_are_errors() {
    use candle_core::{DType, Device, Tensor};
    let x = Tensor::zeros((1, 2, 3, 2), DType::F32, &Device::Cpu).unwrap();
    let mut rng = minibatch::Rng::new(0);
    for (padding, stride) in [(usize::MAX / 4, 1), (usize::MAX / 2, 2), (usize::MAX, 1), (1 << 31, 1 << 31)] {
        for groups in [1, 2] {
            let config = Conv2dConfig { padding, stride, groups, ..Default::default() };
            let conv = Conv2d::new(2, 4, 3, config, &mut rng).unwrap();
            let err = conv.forward(&x).unwrap_err().to_string();
            assert!(err.contains("that fits in memory"), "{padding} {stride}: {err}");
        }
    }
}

#[test]
fn layers_of_absurd_sizes_are_errors_not_panics_or_aborts() {
    use candle_core::{DType, Device, Tensor};
    use minibatch::{AdaptiveAvgPool2d, AvgPool2d};
    let mut rng = minibatch::Rng::new(0);
    let config = Conv2dConfig::default;
    for (inp, out, kernel) in [(1, 1, usize::MAX), (1, 1, 1 << 32), (usize::MAX, 1, 3), (1, usize::MAX, 1)] {
        let err = Conv2d::new(inp, out, kernel, config(), &mut rng).unwrap_err().to_string();
        assert!(err.contains("fits in memory"), "{inp} {out} {kernel}: {err}");
    }
    // Patches of about 2^52 bytes: more than any address space holds, though below isize::MAX.
    let x = Tensor::zeros((1, 2, 4, 5), DType::F32, &Device::Cpu).unwrap();
    for groups in [1, 2] {
        let conv = Conv2d::new(2, 2, 3, Conv2dConfig { padding: 1 << 22, groups, ..config() }, &mut rng).unwrap();
        let err = conv.forward(&x).unwrap_err().to_string();
        assert!(err.contains("fits in memory"), "{err}");
    }
    for pool in [AvgPool2d::new(usize::MAX, 1, 0), AvgPool2d::new(1 << 32, 1, 1 << 31)] {
        let err = pool.forward(&x).unwrap_err().to_string();
        assert!(err.contains("sizes above"), "{err}");
    }
    let flat = Tensor::zeros((1, 1, 0, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(AvgPool2d::new(3, 2, 1).ceil_mode(true).forward(&flat).is_err(), "a map of zero rows");
    for size in [(usize::MAX, 1), (1 << 46, 1)] {
        let err = AdaptiveAvgPool2d::new(size.0, size.1).forward(&x).unwrap_err().to_string();
        assert!(err.contains("fits in memory"), "{err}");
    }
}
