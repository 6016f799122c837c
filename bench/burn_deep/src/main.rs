//! burn's CPU backend (Flex, with its SIMD, rayon and AVX-512 features) on `deep`: 784-512x3-10,
//! ReLU, SGD lr 0.1, bs 128, a plain loop over the first 50,000 MNIST training images, each
//! batch gathered from a shuffled order: `cargo run --release -- [EPOCHS]` (the data: the
//! project's data/mnist, or the folder MINIBATCH_DATA names).
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use std::io::Read;
use std::time::Instant;

#[derive(Module, Debug)]
struct Mlp {
    l1: Linear,
    l2: Linear,
    l3: Linear,
    l4: Linear,
    act: Relu,
}

impl Mlp {
    fn new(device: &Device) -> Self {
        Self {
            l1: LinearConfig::new(784, 512).init(device),
            l2: LinearConfig::new(512, 512).init(device),
            l3: LinearConfig::new(512, 512).init(device),
            l4: LinearConfig::new(512, 10).init(device),
            act: Relu::new(),
        }
    }
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.act.forward(self.l1.forward(x));
        let x = self.act.forward(self.l2.forward(x));
        let x = self.act.forward(self.l3.forward(x));
        self.l4.forward(x)
    }
}

fn read_gz(path: &str) -> Vec<u8> {
    let mut v = vec![];
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut v).unwrap();
    v
}

fn main() {
    let epochs: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    // The project's data, unless MINIBATCH_DATA names another folder.
    let dir = std::env::var("MINIBATCH_DATA")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist").to_string());
    let imgs = read_gz(&format!("{dir}/train-images-idx3-ubyte.gz"));
    let labels = read_gz(&format!("{dir}/train-labels-idx1-ubyte.gz"));
    let n = 50_000;
    let x: Vec<f32> = imgs[16..16 + n * 784].iter().map(|&b| b as f32 / 255.0).collect();
    let y: Vec<i64> = labels[8..8 + n].iter().map(|&b| b as i64).collect();
    let device = Device::flex().autodiff();
    let xs = Tensor::<2>::from_data(TensorData::new(x, [n, 784]), &device);
    let ys = Tensor::<1, Int>::from_data(TensorData::new(y, [n]), &device);
    let mut model = Mlp::new(&device);
    let mut optim = SgdConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let bs = 128;
    let mut seed = 12345u64;
    let mut times = vec![];
    for epoch in 0..epochs {
        let mut idx: Vec<i64> = (0..n as i64).collect();
        for i in (1..n).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            idx.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        let t = Instant::now();
        let mut last = 0f32;
        for b in idx.chunks(bs) {
            let bi = Tensor::<1, Int>::from_data(TensorData::new(b.to_vec(), [b.len()]), &device);
            let xb = xs.clone().select(0, bi.clone());
            let yb = ys.clone().select(0, bi);
            let loss = loss_fn.forward(model.forward(xb), yb);
            if b.len() < bs {
                last = loss.clone().into_scalar::<f32>();
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(0.1, model, grads);
        }
        let s = t.elapsed().as_secs_f64();
        times.push(s);
        eprintln!("burn epoch {epoch}: {s:.3} s, last batch loss {last:.4}");
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("burn median {:.3}", times[times.len() / 2]);
}
