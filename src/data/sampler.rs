//! Samplers: the order in which a loader visits a dataset. A sampler only yields indices.

use crate::error::{Error, Result};
use crate::rng::Rng;

/// An order of indices for each epoch.
///
/// The epoch is passed in, so that one seed gives a fresh order every epoch, and the same seed
/// and epoch give the same order on any machine (resuming training at epoch 3 draws epoch 3's
/// order, not epoch 0's).
pub trait Sampler {
    /// The indices of one epoch.
    fn indices(&self, epoch: u64) -> Vec<usize>;

    /// How many indices an epoch yields.
    fn len(&self) -> usize;

    /// Whether an epoch yields none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `0, 1, ..., n-1` every epoch: for validation, where order does not matter and a fixed one
/// makes runs comparable.
///
/// ```
/// use minibatch::{Sampler, SequentialSampler};
/// assert_eq!(SequentialSampler::new(4).indices(0), vec![0, 1, 2, 3]);
/// ```
#[derive(Debug, Clone)]
pub struct SequentialSampler {
    n: usize,
}

impl SequentialSampler {
    /// The indices `0..n`.
    pub fn new(n: usize) -> Self {
        SequentialSampler { n }
    }
}

impl Sampler for SequentialSampler {
    fn indices(&self, _epoch: u64) -> Vec<usize> {
        (0..self.n).collect()
    }
    fn len(&self) -> usize {
        self.n
    }
}

/// Random indices of `0..n`, drawn afresh each epoch from `(seed, epoch)`: by default a
/// permutation (PyTorch's `randperm`); with replacement, `num_samples` independent draws.
/// Training data is shuffled so that batches differ from epoch to epoch and no order of the
/// examples is learnt.
///
/// ```
/// use minibatch::{RandomSampler, Sampler};
/// let s = RandomSampler::new(5, 42);
/// assert_ne!(s.indices(0), s.indices(1));
/// assert_eq!(s.indices(0), RandomSampler::new(5, 42).indices(0));
/// let boot = RandomSampler::with_replacement(5, 8, 42);
/// assert_eq!(boot.indices(0).len(), 8);
/// ```
#[derive(Debug, Clone)]
pub struct RandomSampler {
    n: usize,
    seed: u64,
    replacement: bool,
    num_samples: usize,
}

impl RandomSampler {
    /// A shuffled order of `0..n` from `seed`.
    pub fn new(n: usize, seed: u64) -> Self {
        RandomSampler { n, seed, replacement: false, num_samples: n }
    }

    /// `num_samples` draws from `0..n`, each uniform and independent (a bootstrap sample).
    pub fn with_replacement(n: usize, num_samples: usize, seed: u64) -> Self {
        RandomSampler { n, seed, replacement: true, num_samples }
    }

    /// The first `num_samples` of each epoch's permutation (at most `n`).
    pub fn without_replacement(n: usize, num_samples: usize, seed: u64) -> Self {
        RandomSampler { n, seed, replacement: false, num_samples: num_samples.min(n) }
    }
}

impl Sampler for RandomSampler {
    fn indices(&self, epoch: u64) -> Vec<usize> {
        let mut rng = Rng::with_stream(self.seed, epoch);
        if self.replacement {
            if self.n == 0 {
                return Vec::new();
            }
            (0..self.num_samples).map(|_| rng.below(self.n)).collect()
        } else {
            let mut p = rng.permutation(self.n);
            p.truncate(self.num_samples);
            p
        }
    }
    fn len(&self) -> usize {
        if self.replacement && self.n == 0 {
            0
        } else {
            self.num_samples
        }
    }
}

/// Cuts a sampler's indices into batches of `batch_size`; the last batch is shorter unless
/// `drop_last` drops it.
///
/// ```
/// use minibatch::{BatchSampler, SequentialSampler};
/// let b = BatchSampler::new(SequentialSampler::new(5), 2, false)?;
/// assert_eq!(b.batches(0), vec![vec![0, 1], vec![2, 3], vec![4]]);
/// assert_eq!(BatchSampler::new(SequentialSampler::new(5), 2, true)?.len(), 2);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub struct BatchSampler {
    sampler: Box<dyn Sampler + Send + Sync>,
    batch_size: usize,
    drop_last: bool,
}

impl BatchSampler {
    /// Batches of `batch_size` (at least 1) over `sampler`.
    pub fn new(sampler: impl Sampler + Send + Sync + 'static, batch_size: usize, drop_last: bool) -> Result<Self> {
        Self::boxed(Box::new(sampler), batch_size, drop_last)
    }

    pub(crate) fn boxed(sampler: Box<dyn Sampler + Send + Sync>, batch_size: usize, drop_last: bool) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid("batch size", "at least 1", 0));
        }
        Ok(BatchSampler { sampler, batch_size, drop_last })
    }

    /// The batches of one epoch.
    pub fn batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        let idx = self.sampler.indices(epoch);
        let chunks = idx.chunks(self.batch_size);
        chunks.filter(|c| !self.drop_last || c.len() == self.batch_size).map(<[usize]>::to_vec).collect()
    }

    /// The number of batches in an epoch.
    pub fn len(&self) -> usize {
        let n = self.sampler.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Whether an epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Whether a short last batch is dropped.
    pub fn drop_last(&self) -> bool {
        self.drop_last
    }
}

impl std::fmt::Debug for BatchSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchSampler")
            .field("batch_size", &self.batch_size)
            .field("drop_last", &self.drop_last)
            .finish()
    }
}
