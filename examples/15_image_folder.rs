//! Lessons 08 and 10: a folder of pictures (MNIST's digits drawn as coloured PNG and JPEG photos
//! of several sizes, written to a temporary folder), read with the data block API (files, a
//! grandparent splitter, a parent-folder labeller, a category processor fitted on the training
//! set), normalised by the training pictures' statistics, augmented per item in the loader's
//! workers, and a CNN for 3-channel 32x32 input trained on it with the Learner.
//!
//! Guide pages 16 and 17 answer the lessons' questions; `minibatch train --data-dir DIR` does the
//! same from the command line. Run: `cargo run --release --features images --example
//! 15_image_folder [N_TRAIN] [EPOCHS]`.

use minibatch::data::block::{get_files, DataBlock, GrandparentSplitter, ParentLabeller};
use minibatch::data::images::{channel_stats, resize_centre_crop, training_transform, Augment, ImageFolder};
use minibatch::learner::Learner;
use minibatch::{cnn_for, cross_entropy, DataLoader, Dataset, Mnist, Module, Result, Sgd, SgdConfig};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|s| s.parse::<usize>().ok());
    let n = args.next().flatten().unwrap_or(10_000);
    let epochs = args.next().flatten().unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("minibatch-example-folder-{}", std::process::id()));
    let written = minibatch::mnist::write_picture_folder(&Mnist::load("data/mnist")?, &dir, n / 10)?;
    println!("wrote {written} pictures to {}", dir.display());

    // Lesson 08: items, splitter, labeller and processor.
    let files = get_files(&dir, &["png", "jpg", "jpeg"])?;
    let sets = DataBlock::new(GrandparentSplitter::default(), ParentLabeller).label(files)?;
    println!("vocabulary (fitted on the training labels): {:?}", sets.vocab);
    let train = ImageFolder::from_items(sets.train, sets.vocab.clone())?.stand_in_for_unreadable();
    let valid = ImageFolder::from_items(sets.valid, sets.vocab)?;
    // The normalisation is measured on training pictures only.
    let stats = channel_stats(&train, 512)?;
    println!("channel means {:?}, standard deviations {:?}", stats.mean, stats.std);

    // Lesson 10: transforms per item, in two workers, drawn from (seed, epoch, index). Digits
    // change class when flipped and fill their pictures: resized and centre cropped only.
    let train_dl = DataLoader::builder_with_collate(train, stats)
        .batch_size(64)
        .shuffle(0)
        .drop_last(true)
        .item_transform(training_transform(32, Augment::None))
        .num_workers(2)
        .build()?;
    let valid_dl = DataLoader::builder_with_collate(valid, stats)
        .batch_size(256)
        .item_transform(resize_centre_crop(32))
        .num_workers(2)
        .build()?;
    println!("{} training and {} validation pictures", train_dl.dataset().len(), valid_dl.dataset().len());

    let model = cnn_for(true, [3, 32, 32], 10, 0)?;
    let opt = Sgd::with_config(model.named_parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() })?;
    let mut learn = Learner::new(model, cross_entropy, opt, train_dl, valid_dl);
    learn.fit(epochs)?;
    println!("validation accuracy after {epochs} epochs: {:.4}", learn.state.metric("accuracy").unwrap_or(f64::NAN));
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
