//! Modules against PyTorch: `Linear`'s forward and gradients (`tests/golden/linear.json`),
//! `GeneralRelu`'s (`general_relu.json`), the printed reprs and parameter names (`reprs.json`),
//! registration by derive and by hand, the reshape layers.

mod common;
use common::*;
use minibatch::{Linear, Module, ModuleList, Param, ReLU, Registered, Rng, Sequential};

fn reprs() -> serde_json::Value {
    golden("reprs.json")
}

fn layers(rng: &mut Rng) -> Vec<Box<dyn Module>> {
    vec![Box::new(Linear::new(784, 50, rng).unwrap()), Box::new(ReLU), Box::new(Linear::new(50, 10, rng).unwrap())]
}

/// The notebook's `Model` with `self.l1, self.l2`: fields registered by the derive.
#[derive(Registered)]
struct Model {
    l1: Linear,
    l2: Linear,
    #[module(skip)]
    _note: &'static str,
}

impl Module for Model {
    fn forward(&self, x: &candle_core::Tensor) -> minibatch::Result<candle_core::Tensor> {
        self.l2.forward(&self.l1.forward(x)?.relu()?)
    }
}

/// The notebook's `add_module` model: layers in a `Vec`, registered by hand as `layer_{i}`.
struct Registered_ {
    layers: Vec<Box<dyn Module>>,
}

impl Registered for Registered_ {
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        self.layers.iter().enumerate().map(|(i, l)| (format!("layer_{i}"), l.as_ref())).collect()
    }
    fn type_name(&self) -> String {
        "Registered".into()
    }
}

impl Module for Registered_ {
    fn forward(&self, x: &candle_core::Tensor) -> minibatch::Result<candle_core::Tensor> {
        self.layers.iter().try_fold(x.clone(), |x, l| l.forward(&x))
    }
}

/// The notebook's `SequentialModel` holding a `ModuleList`.
#[derive(Registered)]
struct SequentialModel {
    layers: ModuleList,
}

impl Module for SequentialModel {
    fn forward(&self, x: &candle_core::Tensor) -> minibatch::Result<candle_core::Tensor> {
        self.layers.iter().try_fold(x.clone(), |x, l| l.forward(&x))
    }
}

/// A module with its own parameter, registered with `#[module(param)]`.
#[derive(Registered)]
struct Scale(#[module(param)] Param);

impl Module for Scale {
    fn forward(&self, x: &candle_core::Tensor) -> minibatch::Result<candle_core::Tensor> {
        Ok(x.broadcast_mul(&self.0.tensor())?)
    }
}

#[test]
fn reprs_match_pytorch() {
    let g = reprs();
    let mut rng = Rng::new(0);
    let s = |k: &str| g[k].as_str().unwrap().to_string();
    assert_eq!(Linear::new(784, 50, &mut rng).unwrap().to_string(), s("linear"));
    assert_eq!(Linear::no_bias(3, 2, &mut rng).unwrap().to_string(), s("linear_no_bias"));
    assert_eq!(ReLU.to_string(), s("relu"));
    let model =
        Model { l1: Linear::new(784, 50, &mut rng).unwrap(), l2: Linear::new(50, 10, &mut rng).unwrap(), _note: "" };
    assert_eq!(model.to_string(), s("model_l1_l2"));
    assert_eq!(Registered_ { layers: layers(&mut rng) }.to_string_dyn(), s("registered_layers"));
    let ml = SequentialModel { layers: ModuleList::new(layers(&mut rng)) };
    assert_eq!(ml.to_string(), s("module_list_model"));
    assert_eq!(Sequential::from(layers(&mut rng)).to_string(), s("sequential"));
}

trait ToStringDyn {
    fn to_string_dyn(&self) -> String;
}
impl<M: Module> ToStringDyn for M {
    fn to_string_dyn(&self) -> String {
        (self as &dyn Module).to_string()
    }
}

#[test]
fn names_match_pytorch() {
    let g = reprs();
    let mut rng = Rng::new(0);
    let seq = Sequential::from(layers(&mut rng));
    let got: Vec<(String, Vec<usize>)> =
        seq.named_parameters().into_iter().map(|(n, p)| (n, p.dims().to_vec())).collect();
    let want: Vec<(String, Vec<usize>)> = serde_json::from_value(g["sequential_named_parameters"].clone()).unwrap();
    assert_eq!(got, want);
    let model =
        Model { l1: Linear::new(784, 50, &mut rng).unwrap(), l2: Linear::new(50, 10, &mut rng).unwrap(), _note: "" };
    let children: Vec<String> = model.named_children().into_iter().map(|(n, _)| n).collect();
    let want: Vec<String> = serde_json::from_value(g["model_named_children"].clone()).unwrap();
    assert_eq!(children, want);
    // Every way of registering gives the same parameters for the same layers.
    assert_eq!(model.parameters().len(), 4);
    assert_eq!(Registered_ { layers: layers(&mut rng) }.parameters().len(), 4);
    assert_eq!(SequentialModel { layers: ModuleList::new(layers(&mut rng)) }.parameters().len(), 4);
    let scale = Scale(Param::new(&candle_core::Tensor::new(&[2f32], &candle_core::Device::Cpu).unwrap()).unwrap());
    assert_eq!(scale.named_parameters()[0].0, "0");
}

#[test]
fn linear_forward_and_gradients_match_pytorch() {
    let g = golden("linear.json");
    let lin = Linear::from_tensors(tensor(&g["weight"]), Some(tensor(&g["bias"]))).unwrap();
    let x = Param::new(&tensor(&g["x"])).unwrap();
    let y = lin.forward(&x.tensor()).unwrap().relu().unwrap();
    assert_close("relu(linear(x))", &flat(&y), &golden_flat(&g["relu_linear_out"]), 1e-6, 1e-5);
    let loss = y.sum_all().unwrap();
    let mut params = lin.parameters();
    params.push(x.clone());
    minibatch::backward(&loss, &params).unwrap();
    assert_close("grad weight", &flat(&lin.weight().grad().unwrap()), &golden_flat(&g["grad_weight"]), 1e-6, 1e-5);
    assert_close("grad bias", &flat(&lin.bias().unwrap().grad().unwrap()), &golden_flat(&g["grad_bias"]), 1e-6, 1e-5);
    assert_close("grad x", &flat(&x.grad().unwrap()), &golden_flat(&g["grad_x"]), 1e-6, 1e-5);
}

#[test]
fn gradients_accumulate_until_zeroed() {
    let g = golden("linear.json");
    let lin = Linear::from_tensors(tensor(&g["weight"]), Some(tensor(&g["bias"]))).unwrap();
    let x = tensor(&g["x"]);
    let step = || lin.backward(&lin.forward(&x).unwrap().relu().unwrap().sum_all().unwrap()).unwrap();
    step();
    step();
    let twice: Vec<f64> = golden_flat(&g["grad_weight"]).iter().map(|v| 2.0 * v).collect();
    assert_close("accumulated grad", &flat(&lin.weight().grad().unwrap()), &twice, 1e-6, 1e-5);
    lin.zero_grad();
    assert!(lin.weight().grad().is_none());
    step();
    assert_close("fresh grad", &flat(&lin.weight().grad().unwrap()), &golden_flat(&g["grad_weight"]), 1e-6, 1e-5);
}

#[test]
fn pytorch_init_bounds() {
    // nn.Linear(fan_in, fan_out): weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    let lin = Linear::new(100, 50, &mut Rng::new(1)).unwrap();
    let w = flat(&lin.weight().tensor());
    let b = flat(&lin.bias().unwrap().tensor());
    assert!(w.iter().chain(&b).all(|v| v.abs() <= 0.1));
    let max = w.iter().fold(0f64, |m, v| m.max(v.abs()));
    assert!(max > 0.099, "the draws should reach the bound: {max}");
    let mean = w.iter().sum::<f64>() / w.len() as f64;
    assert!(mean.abs() < 0.005, "{mean}");
}

#[test]
fn no_grad_records_nothing_and_module_list_has_no_forward() {
    let mut rng = Rng::new(0);
    let lin = Linear::new(3, 2, &mut rng).unwrap();
    let x = candle_core::Tensor::ones((1, 3), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let y = minibatch::no_grad(|| lin.forward(&x).unwrap().sum_all().unwrap());
    lin.backward(&y).unwrap();
    assert!(lin.weight().grad().is_none(), "a no_grad result must have no gradient path");
    assert!(minibatch::module::is_grad_enabled());
    let list = ModuleList::new(layers(&mut rng));
    assert!(list.forward(&x).unwrap_err().to_string().contains("no forward"));
}

#[test]
fn general_relu_matches_pytorch_values_and_gradients() {
    let g = golden("general_relu.json");
    let opt = |v: &serde_json::Value| v.as_f64();
    for case in g["cases"].as_array().unwrap() {
        let act = minibatch::GeneralRelu { leak: opt(&case["leak"]), sub: opt(&case["sub"]), maxv: opt(&case["maxv"]) };
        let x = Param::new(&tensor(&g["x"])).unwrap();
        let y = act.forward(&x.tensor()).unwrap();
        assert_close(&format!("{act:?} y"), &flat(&y), &golden_flat(&case["y"]), 1e-6, 1e-6);
        let weights =
            candle_core::Tensor::arange(1f32, 25., &candle_core::Device::Cpu).unwrap().reshape((4, 6)).unwrap();
        minibatch::backward(&(y * weights).unwrap().sum_all().unwrap(), std::slice::from_ref(&x)).unwrap();
        assert_close(&format!("{act:?} grad"), &flat(&x.grad().unwrap()), &golden_flat(&case["grad_x"]), 1e-6, 1e-6);
    }
}

#[test]
fn the_lessons_reshape_layers() {
    use minibatch::{Flatten, View};
    let x = candle_core::Tensor::arange(0f32, 2. * 784., &candle_core::Device::Cpu).unwrap().reshape((2, 784)).unwrap();
    let images = View::new(&[-1, 1, 28, 28]).forward(&x).unwrap();
    assert_eq!(images.dims(), &[2, 1, 28, 28]);
    assert_eq!(flat(&Flatten.forward(&images).unwrap()), flat(&x), "Flatten undoes the view");
    assert_eq!(View::new(&[-1, 1, 28, 28]).to_string(), "View(-1, 1, 28, 28)");
    assert_eq!(Flatten.to_string(), "Flatten(start_dim=1, end_dim=-1)");
    for bad in [&[-1i64, -1, 28][..], &[-1, 5], &[3, 784], &[-2, 784]] {
        assert!(View::new(bad).forward(&x).is_err(), "{bad:?}");
    }
}

#[test]
fn dropout_drops_while_training_and_not_in_eval_mode() {
    use minibatch::Dropout;
    let x =
        Param::new(&candle_core::Tensor::ones(100_000, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap())
            .unwrap();
    let drop = Dropout::new(0.3, 5).unwrap();
    let y = drop.forward(&x.tensor()).unwrap();
    let v = flat(&y);
    let zeros = v.iter().filter(|&&a| a == 0.0).count() as f64 / v.len() as f64;
    assert!((zeros - 0.3).abs() < 0.01, "{zeros}");
    assert!(v.iter().all(|&a| a == 0.0 || (a - 1.0 / 0.7).abs() < 1e-6));
    minibatch::backward(&y.sum_all().unwrap(), std::slice::from_ref(&x)).unwrap();
    assert_eq!(flat(&x.grad().unwrap()), v, "the gradient passes where the mask kept");
    assert_eq!(flat(&Dropout::new(0.3, 5).unwrap().forward(&x.tensor()).unwrap()), v, "seeded");
    // The loop's eval() reaches it inside a container.
    let model = Sequential::new().add(Dropout::new(0.5, 0).unwrap());
    model.eval();
    assert_eq!(flat(&model.forward(&x.tensor()).unwrap()), flat(&x.tensor()));
    model.train();
    assert_ne!(flat(&model.forward(&x.tensor()).unwrap()), flat(&x.tensor()));
    assert_eq!(drop.to_string(), "Dropout(p=0.3, inplace=False)");
    assert!(Dropout::new(1.0, 0).is_err());
}

#[test]
fn derived_buffers_are_saved_with_the_weights_but_never_trained() {
    use minibatch::{BatchNorm, Buffer, Registered};
    #[derive(Registered)]
    struct Model {
        bn: BatchNorm,
        #[module(buffer)]
        steps: Buffer,
    }
    let model = Model {
        bn: BatchNorm::new_1d(2).unwrap(),
        steps: Buffer::new(candle_core::Tensor::new(&[7f32], &candle_core::Device::Cpu).unwrap()),
    };
    impl minibatch::Module for Model {
        fn forward(&self, xs: &candle_core::Tensor) -> minibatch::Result<candle_core::Tensor> {
            self.bn.forward(xs)
        }
    }
    let buffers: Vec<String> = model.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(buffers, ["steps", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]);
    let params: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(params, ["bn.weight", "bn.bias"]);
    assert_eq!(minibatch::state_dict(&model)["steps"].to_vec1::<f32>().unwrap(), [7.0]);
}

#[test]
fn weights_of_another_model_are_refused_naming_what_the_file_holds() {
    let path = std::env::temp_dir().join(format!("minibatch-other-model-{}.safetensors", std::process::id()));
    minibatch::save_state(&minibatch::cnn(false, 10, 0).unwrap(), &path).unwrap();
    let mlp = minibatch::mlp(&[784, 50, 10], 0).unwrap();
    let before: Vec<Vec<f64>> = mlp.parameters().iter().map(|p| flat(&p.tensor())).collect();
    let err = minibatch::load_state(&mlp, &path).unwrap_err().to_string();
    assert!(
        err.contains("tensor 0.weight: expected [50, 784], found nothing (the file holds 1.0.bias, 1.0.weight"),
        "{err}"
    );
    assert!(err.contains("tensors in all)"), "{err}");
    let after: Vec<Vec<f64>> = mlp.parameters().iter().map(|p| flat(&p.tensor())).collect();
    assert_eq!(before, after, "nothing loaded");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn linear_and_normalisation_layers_of_absurd_sizes_are_errors() {
    use minibatch::{BatchNorm, LayerNorm, Linear};
    let mut rng = minibatch::Rng::new(0);
    for (i, o) in [(usize::MAX, 1), (1, usize::MAX), (1 << 32, 1 << 32), (1 << 24, 1 << 24)] {
        let err = Linear::new(i, o, &mut rng).unwrap_err().to_string();
        assert!(err.contains("fits in memory"), "{i} {o}: {err}");
    }
    for channels in [usize::MAX, 1 << 62] {
        assert!(BatchNorm::new_2d(channels).unwrap_err().to_string().contains("fit in memory"));
    }
    assert!(LayerNorm::new(&[1 << 40, 1 << 30]).unwrap_err().to_string().contains("fit in memory"));
}
