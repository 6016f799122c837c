use minibatch::*;
fn main() -> Result<()> {
    set_num_threads(1);
    let data = Mnist::load("data/mnist")?;
    for seed in 0..8u64 {
        let (train_dl, valid_dl) = get_dls(data.train.clone(), data.valid.clone(), 64)?;
        let train_dl = train_dl.shuffle(seed).drop_last(std::env::var("DL").is_ok());
        let (model, mut opt) = get_model(784, 50, 10, 0.5, seed)?;
        let s = fit(3, &model, cross_entropy, &mut opt, &train_dl, &valid_dl)?;
        println!("seed {seed}: {:.4} {:.4} {:.4}  {:.2}s", s[0].valid_accuracy, s[1].valid_accuracy, s[2].valid_accuracy, s[0].seconds);
    }
    Ok(())
}
