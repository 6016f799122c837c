//! The data pipeline: order and content per seed, reshuffling, drop_last, collate, errors.

use candle_core::{Device, Tensor};
use minibatch::{
    get_dls, BatchSampler, DataLoader, Dataset, Error, RandomSampler, Sampler, SequentialSampler, TensorDataset,
};

fn ds(n: usize) -> TensorDataset {
    let x = Tensor::arange(0f32, (n * 2) as f32, &Device::Cpu).unwrap().reshape((n, 2)).unwrap();
    let y = Tensor::arange(0u32, n as u32, &Device::Cpu).unwrap();
    TensorDataset::new(x, y).unwrap()
}

fn epoch_labels<C: minibatch::Collate<(Tensor, Tensor), Batch = (Tensor, Tensor)>>(
    dl: &DataLoader<TensorDataset, C>,
) -> Vec<Vec<u32>> {
    dl.iter().map(|b| b.unwrap().1.to_vec1::<u32>().unwrap()).collect()
}

#[test]
fn in_order_with_a_short_last_batch() {
    let dl = DataLoader::new(ds(10), 4).unwrap();
    assert_eq!(dl.len(), 3);
    assert_eq!(epoch_labels(&dl), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
    let (x, _) = dl.iter().next().unwrap().unwrap();
    assert_eq!(x.to_vec2::<f32>().unwrap()[1], vec![2., 3.], "row 1 of x goes with label 1");
    let dropped = DataLoader::builder(ds(10)).batch_size(4).drop_last(true).build().unwrap();
    assert_eq!(dropped.len(), 2);
    assert_eq!(epoch_labels(&dropped), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
}

#[test]
fn shuffled_afresh_each_epoch_and_the_same_per_seed() {
    let dl = DataLoader::builder(ds(100)).batch_size(10).shuffle(7).build().unwrap();
    let e0 = epoch_labels(&dl);
    let e1 = epoch_labels(&dl);
    assert_ne!(e0, e1, "each epoch reshuffles");
    for e in [&e0, &e1] {
        let mut all: Vec<u32> = e.concat();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>(), "an epoch visits every item once");
    }
    let again = DataLoader::builder(ds(100)).batch_size(10).shuffle(7).build().unwrap();
    assert_eq!(epoch_labels(&again), e0, "same seed, same first epoch");
    assert_eq!(epoch_labels(&again), e1, "same seed, same second epoch");
    assert_eq!(dl.iter_epoch(0).map(|b| b.unwrap().1.to_vec1::<u32>().unwrap()).collect::<Vec<_>>(), e0);
    let other = DataLoader::builder(ds(100)).batch_size(10).shuffle(8).build().unwrap();
    assert_ne!(epoch_labels(&other), e0, "another seed, another order");
}

#[test]
fn samplers_only_yield_indices() {
    assert_eq!(SequentialSampler::new(3).indices(5), vec![0, 1, 2]);
    let r = RandomSampler::new(6, 1);
    assert_eq!(r.len(), 6);
    assert_ne!(r.indices(0), r.indices(1));
    let b = BatchSampler::new(RandomSampler::new(7, 1), 3, true).unwrap();
    assert_eq!(b.batches(0).len(), 2);
    assert!(matches!(BatchSampler::new(SequentialSampler::new(3), 0, false), Err(Error::InvalidArgument { .. })));
    assert!(DataLoader::new(ds(3), 0).is_err());
}

#[test]
fn collate_can_be_replaced() {
    // Targets one-hot instead of class indices.
    let one_hot = |items: Vec<(Tensor, Tensor)>| -> minibatch::Result<(Tensor, Tensor)> {
        let (xs, ys): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        let labels: Vec<u32> = ys.iter().map(|y| y.to_scalar::<u32>()).collect::<Result<_, _>>()?;
        let mut oh = vec![0f32; labels.len() * 10];
        for (i, l) in labels.iter().enumerate() {
            oh[i * 10 + *l as usize] = 1.0;
        }
        Ok((Tensor::stack(&xs, 0)?, Tensor::from_vec(oh, (labels.len(), 10), &Device::Cpu)?))
    };
    let dl = DataLoader::builder_with_collate(ds(5), one_hot).batch_size(2).build().unwrap();
    let (_, y) = dl.iter().nth(1).unwrap().unwrap();
    assert_eq!(y.dims(), &[2, 10]);
    assert_eq!(y.to_vec2::<f32>().unwrap()[1][3], 1.0);
}

struct Faulty;

impl Dataset for Faulty {
    type Item = (Tensor, Tensor);
    fn len(&self) -> usize {
        8
    }
    fn get(&self, index: usize) -> minibatch::Result<(Tensor, Tensor)> {
        if index == 5 {
            return Err(Error::Unsupported("corrupt record".into()));
        }
        Ok((Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu)?, Tensor::new(0u32, &Device::Cpu)?))
    }
}

#[test]
fn a_failing_item_is_an_error_naming_its_index() {
    let dl = DataLoader::new(Faulty, 4).unwrap();
    let results: Vec<_> = dl.iter().collect();
    assert!(results[0].is_ok());
    let err = results[1].as_ref().unwrap_err();
    assert!(matches!(err, Error::Item { index: 5, .. }), "{err:?}");
    assert!(err.to_string().contains("item 5") && err.to_string().contains("corrupt record"));
    assert!(ds(3).get(3).is_err(), "out of range is an error, not a panic");
}

#[test]
fn get_dls_shuffles_training_only_and_doubles_the_validation_batch() {
    let (train, valid) = get_dls(ds(100), ds(50), 8).unwrap();
    assert_eq!((train.batch_size(), valid.batch_size()), (8, 16));
    assert_eq!(valid.len(), 4);
    let v: Vec<u32> = epoch_labels(&valid).concat();
    assert_eq!(v, (0..50).collect::<Vec<_>>(), "validation in order");
    assert_eq!(epoch_labels(&valid).concat(), v, "and the same order every epoch");
    assert_eq!(train.len(), 12, "the short training batch (4 of 100) is dropped");
    let t = epoch_labels(&train).concat();
    assert_eq!(t.len(), 96);
    assert_ne!(t, (0..96).collect::<Vec<_>>(), "training is shuffled");
}

#[test]
fn items_of_plain_numbers_collate_and_train() {
    use minibatch::{Collate, DefaultCollate, VecDataset};
    let (x, y) = DefaultCollate.collate(vec![(vec![1f32, 2., 3.], 2usize), (vec![4., 5., 6.], 0)]).unwrap();
    assert_eq!(x.to_vec2::<f32>().unwrap(), [[1., 2., 3.], [4., 5., 6.]]);
    assert_eq!(y.to_vec1::<u32>().unwrap(), [2, 0]);
    let ragged = DefaultCollate.collate(vec![(vec![1f32, 2.], 0u32), (vec![3.], 1)]).unwrap_err().to_string();
    assert_eq!(ragged, "invalid batch: expected inputs of 2 values each, found 1");
    let negative = DefaultCollate.collate(vec![([1f32], -1i64)]).unwrap_err().to_string();
    assert!(negative.contains("invalid label") && negative.contains("-1"), "{negative}");

    // XOR-like points, learnt by the notebook's loop with no tensor written by hand.
    let mut rng = minibatch::Rng::new(0);
    let items: Vec<([f32; 2], u32)> = (0..512)
        .map(|_| {
            let (a, b) = (rng.uniform(-1.0, 1.0) as f32, rng.uniform(-1.0, 1.0) as f32);
            ([a, b], u32::from((a > 0.0) != (b > 0.0)))
        })
        .collect();
    let (train, valid) = (VecDataset(items[..384].to_vec()), VecDataset(items[384..].to_vec()));
    let (train_dl, valid_dl) = (DataLoader::new(train, 32).unwrap(), DataLoader::new(valid, 64).unwrap());
    let model = minibatch::mlp(&[2, 32, 2], 0).unwrap();
    let mut opt = minibatch::Sgd::new(minibatch::Module::parameters(&model), 0.5).unwrap();
    let stats = minibatch::fit(30, &model, minibatch::cross_entropy, &mut opt, &train_dl, &valid_dl).unwrap();
    assert!(stats[29].valid_accuracy > 0.9, "{:?}", stats[29]);
}
