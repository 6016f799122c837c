//! `DistributedSampler` against PyTorch's (`tests/golden/distributed_sampler.json`, from
//! `make_golden.py`'s `distributed_sampler()`), and the properties of its shuffled shares.

mod common;
use common::*;
use minibatch::data::ShardSampler;
use minibatch::{DistributedSampler, Sampler};

#[test]
fn shares_in_order_match_pytorchs_padded_and_with_drop_last() {
    let g = golden("distributed_sampler.json");
    for case in g["cases"].as_array().unwrap() {
        let (n, world) = (case["n"].as_u64().unwrap() as usize, case["world"].as_u64().unwrap() as usize);
        let drop_last = case["drop_last"].as_bool().unwrap();
        for (rank, want) in case["shares"].as_array().unwrap().iter().enumerate() {
            let want: Vec<usize> = want.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let s = DistributedSampler::in_order(n, world, rank).unwrap().drop_last(drop_last);
            assert_eq!(s.indices(0), want, "n {n}, world {world}, rank {rank}, drop_last {drop_last}");
            assert_eq!(s.len(), want.len());
        }
    }
}

#[test]
fn shuffled_shares_are_disjoint_cover_the_data_and_change_each_epoch() {
    let (n, world) = (1000, 4);
    let shares = |epoch| -> Vec<Vec<usize>> {
        (0..world).map(|r| DistributedSampler::new(n, world, r, 7).unwrap().indices(epoch)).collect()
    };
    for epoch in 0..3 {
        let mut all: Vec<usize> = shares(epoch).concat();
        assert_eq!(all.len(), n, "1000 divides by 4: no padding");
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "disjoint and covering, epoch {epoch}");
    }
    assert_ne!(shares(0)[0], shares(1)[0], "a fresh order each epoch");
    assert_eq!(shares(2), shares(2), "the same seed and epoch, the same shares on every process");
    // One process's shuffled shares are the permutation a single process would see, dealt out.
    let whole = minibatch::RandomSampler::new(n, 7).indices(1);
    assert_eq!(shares(1)[1], whole.iter().copied().skip(1).step_by(world).collect::<Vec<_>>());
    assert!(DistributedSampler::new(10, 2, 2, 0).is_err(), "rank past the world");
}

#[test]
fn validation_shards_hold_every_index_once() {
    for (n, world) in [(10, 3), (7, 8), (10_000, 2)] {
        let mut all: Vec<usize> = (0..world).flat_map(|r| ShardSampler::new(n, world, r).unwrap().indices(0)).collect();
        let lens: usize = (0..world).map(|r| ShardSampler::new(n, world, r).unwrap().len()).sum();
        assert_eq!(lens, n);
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }
}
