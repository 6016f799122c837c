//! Notebook stage 8: a `Dataset` is three things: a length, an item for each index, and items
//! that pair an input with its target. Here the notebook's `Dataset(x, y)` is written by hand, and
//! the loop slices batches out of it.
//!
//! Run: `cargo run --release --example 08_dataset [N_TRAIN]`.
//!
//! The questions of this stage are answered in the guide: `guide/05-dataset-dataloader.md`.

use minibatch::candle_core::Tensor;
use minibatch::{
    cross_entropy, evaluate, get_model, DataLoader, Dataset, Error, Mnist, Module, Optimizer, Result, TensorDataset,
};

struct MyDataset {
    x: Tensor,
    y: Tensor,
}

impl Dataset for MyDataset {
    type Item = (Tensor, Tensor);

    fn len(&self) -> usize {
        self.x.dims()[0]
    }

    fn get(&self, i: usize) -> Result<(Tensor, Tensor)> {
        if i >= self.len() {
            return Err(Error::invalid("index", format!("below {}", self.len()), i));
        }
        Ok((self.x.get(i)?, self.y.get(i)?))
    }
}

fn main() -> Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let data = Mnist::load("data/mnist")?;
    let (x, y) = data.train.slice(0, n)?.tensors()?;
    let train_ds = MyDataset { x, y };
    let (x0, y0) = train_ds.get(0)?;
    println!("{} items; item 0: x {:?}, y {}", train_ds.len(), x0.dims(), y0.to_scalar::<u32>()?);

    let (model, mut opt) = get_model(784, 50, 10, 0.5, 0)?;
    let bs = 64;
    for i in (0..train_ds.len()).step_by(bs) {
        // The notebook's `xb, yb = train_ds[i*bs : i*bs+bs]`: a slice of the dataset.
        let len = bs.min(train_ds.len() - i);
        let (xb, yb) = (train_ds.x.narrow(0, i, len)?, train_ds.y.narrow(0, i, len)?);
        let loss = cross_entropy(&model.forward(&xb)?, &yb)?;
        model.backward(&loss)?;
        opt.step()?;
        opt.zero_grad();
    }
    let (xv, yv) = data.valid.tensors()?;
    let valid = DataLoader::new(TensorDataset::new(xv, yv)?, 128)?;
    let e = evaluate(&model, cross_entropy, &valid)?;
    println!("validation: loss {:.4} accuracy {:.4}", e.loss, e.accuracy);
    Ok(())
}
