//! The loader's workers: the same batches whatever their number, errors and panics reported
//! with the item's index, no hang, no thread left behind, samplers and datasets of issue 3.

mod common;
use candle_core::{Device, Tensor};
use common::mnist_dir;
use minibatch::data::{normalize, random_split, ConcatDataset, Subset, SubsetRandomSampler, WeightedRandomSampler};
use minibatch::{DataLoader, Dataset, Error, Mnist, RandomSampler, Sampler};

fn all_batches(dl: &DataLoader<minibatch::ImageDataset>, epochs: u64) -> Vec<(Vec<f32>, Vec<u32>)> {
    (0..epochs)
        .flat_map(|_| dl.iter().map(|b| b.unwrap()).collect::<Vec<_>>())
        .map(|(x, y)| (x.flatten_all().unwrap().to_vec1().unwrap(), y.to_vec1().unwrap()))
        .collect()
}

#[test]
fn zero_one_and_four_workers_give_identical_batches() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let small = data.train.slice(0, 2000).unwrap();
    let loader = |workers: usize| {
        let b = DataLoader::builder(small.clone())
            .batch_size(64)
            .shuffle(3)
            .batch_transform(normalize(0.13, 0.31))
            .item_transform(|mut item: minibatch::ImageItem, rng: &mut minibatch::Rng| {
                // A random 'augmentation' that depends on the item's generator only.
                let mut px = item.pixels.to_vec();
                px[rng.below(784)] = 255;
                item.pixels = px.into();
                Ok(item)
            });
        if workers == 0 {
            b.build().unwrap()
        } else {
            b.num_workers(workers).prefetch(3).build().unwrap()
        }
    };
    let reference = all_batches(&loader(0), 2);
    assert_eq!(reference.len(), 64, "32 batches an epoch, two epochs");
    for w in [1, 4] {
        let dl = loader(w);
        assert_eq!(dl.num_workers(), w);
        assert!(all_batches(&dl, 2) == reference, "{w} workers differ from 0");
    }
}

struct Flaky;

impl Dataset for Flaky {
    type Item = (Tensor, Tensor);
    fn len(&self) -> usize {
        40
    }
    fn get(&self, index: usize) -> minibatch::Result<(Tensor, Tensor)> {
        match index {
            13 => Err(Error::Unsupported("unreadable record".into())),
            27 => panic!("user code panicked at 27"),
            _ => Ok((Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu)?, Tensor::new(1u32, &Device::Cpu)?)),
        }
    }
}

#[test]
fn errors_and_panics_in_workers_name_the_index_and_nothing_hangs() {
    for workers in [0, 2] {
        let b = DataLoader::builder(Flaky).batch_size(8);
        let dl = if workers == 0 { b.build().unwrap() } else { b.num_workers(workers).build().unwrap() };
        for _epoch in 0..2 {
            let results: Vec<_> = dl.iter().collect();
            assert_eq!(results.len(), 5);
            assert!(results[0].is_ok() && results[2].is_ok() && results[4].is_ok());
            let e = results[1].as_ref().unwrap_err();
            assert!(matches!(e, Error::Item { index: 13, .. }), "{workers} workers: {e:?}");
            let p = results[3].as_ref().unwrap_err();
            assert!(matches!(p, Error::Item { index: 27, .. }), "{workers} workers: {p:?}");
            assert!(p.to_string().contains("user code panicked at 27"), "{p}");
        }
    }
}

#[test]
fn samplers_with_replacement_weights_and_subsets() {
    let boot = RandomSampler::with_replacement(10, 1000, 1).indices(0);
    assert_eq!(boot.len(), 1000);
    let distinct: std::collections::BTreeSet<_> = boot.iter().collect();
    assert_eq!(distinct.len(), 10, "every index drawn with 1000 draws");
    assert!(boot.iter().all(|&i| i < 10));
    assert_eq!(RandomSampler::without_replacement(10, 4, 1).indices(2).len(), 4);

    // Weights 1:3: about three quarters of the draws are index 1.
    let w = WeightedRandomSampler::new(vec![1.0, 3.0], 4000, true, 2).unwrap().indices(0);
    let ones = w.iter().filter(|&&i| i == 1).count();
    assert!((2800..3200).contains(&ones), "{ones}");
    let perm = WeightedRandomSampler::new(vec![1.0, 0.0, 2.0, 5.0], 3, false, 2).unwrap().indices(0);
    let mut sorted = perm.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 2, 3], "without replacement: each positive weight once");
    assert!(WeightedRandomSampler::new(vec![1.0, f64::NAN], 1, true, 0).is_err());
    assert!(WeightedRandomSampler::new(vec![1.0, 0.0], 2, false, 0).is_err());

    let sub = SubsetRandomSampler::new((100..120).collect(), 0);
    assert_ne!(sub.indices(0), sub.indices(1), "a fresh order each epoch");
    let mut e = sub.indices(1);
    e.sort();
    assert_eq!(e, (100..120).collect::<Vec<_>>(), "only the subset, each once");
}

#[test]
fn subsets_splits_and_concatenations() {
    let data = Mnist::load(mnist_dir()).unwrap();
    let small = data.test.slice(0, 100).unwrap();
    let parts = random_split(small.clone(), &[70, 30], 9).unwrap();
    let mut seen: Vec<usize> = parts.iter().flat_map(|p| p.indices().to_vec()).collect();
    seen.sort();
    assert_eq!(seen, (0..100).collect::<Vec<_>>(), "the parts are disjoint and cover the set");
    assert_eq!(parts[1].get(0).unwrap(), small.get(parts[1].indices()[0]).unwrap());
    assert!(random_split(small.clone(), &[70, 20], 9).is_err());

    let sub = Subset::new(small.clone(), vec![3, 1]).unwrap();
    assert_eq!(sub.get(1).unwrap().label, small.label(1).unwrap());
    assert!(sub.get(2).is_err() && Subset::new(small.clone(), vec![100]).is_err());

    let both = ConcatDataset::new(vec![small.slice(0, 10).unwrap(), small.slice(50, 5).unwrap()]);
    assert_eq!(both.len(), 15);
    assert_eq!(both.get(12).unwrap(), small.get(52).unwrap());
    assert!(both.get(15).is_err());
    let dl = DataLoader::new(both, 4).unwrap();
    assert_eq!(dl.iter().map(|b| b.unwrap().1.dims()[0]).collect::<Vec<_>>(), vec![4, 4, 4, 3]);
}
