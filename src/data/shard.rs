//! `DistributedSampler`: each process's share of an epoch, PyTorch's semantics.

use super::{RandomSampler, Sampler};
use crate::error::{Error, Result};

/// The share of process `rank` of `world` in every epoch: PyTorch's
/// `torch.utils.data.DistributedSampler`. Every process draws the same permutation of the epoch
/// (from the seed and the epoch number, so a loader's epoch is its `set_epoch`), pads it by
/// repeating its start up to a multiple of `world` (or, with [`drop_last`](Self::drop_last), cuts
/// it down to one), and takes every `world`-th index from position `rank`. The shares are
/// disjoint apart from the padding, cover the data set together, and all have
/// [`len`](Sampler::len) indices, so every process runs the same number of batches.
///
/// ```
/// use minibatch::{DistributedSampler, Sampler};
/// // 10 indices on 3 processes: 4 each, padded with the first two.
/// let shares: Vec<Vec<usize>> = (0..3).map(|r| DistributedSampler::in_order(10, 3, r).unwrap().indices(0)).collect();
/// assert_eq!(shares, [vec![0, 3, 6, 9], vec![1, 4, 7, 0], vec![2, 5, 8, 1]]);
/// let cut = DistributedSampler::in_order(10, 3, 0)?.drop_last(true);
/// assert_eq!(cut.indices(0), [0, 3, 6]);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DistributedSampler {
    n: usize,
    world: usize,
    rank: usize,
    seed: Option<u64>,
    drop_last: bool,
}

impl DistributedSampler {
    /// Shuffled shares (PyTorch's `shuffle=True`): a fresh permutation each epoch from `seed`.
    pub fn new(n: usize, world: usize, rank: usize, seed: u64) -> Result<Self> {
        Ok(DistributedSampler { seed: Some(seed), ..Self::in_order(n, world, rank)? })
    }

    /// Shares of `0..n` in order (PyTorch's `shuffle=False`).
    pub fn in_order(n: usize, world: usize, rank: usize) -> Result<Self> {
        if world == 0 || rank >= world {
            return Err(Error::invalid(
                "distributed sampler rank",
                format!("a rank below the world size {world}"),
                rank,
            ));
        }
        Ok(DistributedSampler { n, world, rank, seed: None, drop_last: false })
    }

    /// Cuts the epoch down to a multiple of the world size instead of padding it.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Every process's number of indices per epoch times the number of processes.
    pub fn total_size(&self) -> usize {
        self.len() * self.world
    }
}

impl Sampler for DistributedSampler {
    fn indices(&self, epoch: u64) -> Vec<usize> {
        let mut order = match self.seed {
            Some(seed) => RandomSampler::new(self.n, seed).indices(epoch),
            None => (0..self.n).collect(),
        };
        let total = self.total_size();
        if order.is_empty() {
            return Vec::new();
        }
        // Padding repeats the order from its start, as often as it takes.
        let mut at = 0;
        while order.len() < total {
            order.push(order[at]);
            at += 1;
        }
        order.truncate(total);
        order.into_iter().skip(self.rank).step_by(self.world).collect()
    }

    fn len(&self) -> usize {
        if self.drop_last {
            self.n / self.world
        } else {
            self.n.div_ceil(self.world)
        }
    }
}

/// The validation share of process `rank` of `world`: every index of `0..n` exactly once across
/// the processes (`rank`, `rank + world`, ...), without padding, so that sums reduced across the
/// processes give the exact means over the whole set. Shares differ in length by at most one.
///
/// ```
/// use minibatch::{data::ShardSampler, Sampler};
/// assert_eq!(ShardSampler::new(5, 2, 1)?.indices(0), [1, 3]);
/// # Ok::<(), minibatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ShardSampler {
    n: usize,
    world: usize,
    rank: usize,
}

impl ShardSampler {
    /// Process `rank`'s share of `0..n`.
    pub fn new(n: usize, world: usize, rank: usize) -> Result<Self> {
        if world == 0 || rank >= world {
            return Err(Error::invalid("shard sampler rank", format!("a rank below the world size {world}"), rank));
        }
        Ok(ShardSampler { n, world, rank })
    }
}

impl Sampler for ShardSampler {
    fn indices(&self, _epoch: u64) -> Vec<usize> {
        (self.rank..self.n).step_by(self.world).collect()
    }

    fn len(&self) -> usize {
        self.n.saturating_sub(self.rank).div_ceil(self.world)
    }
}
