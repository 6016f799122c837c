//! Persistent worker threads that fetch batches for a loader.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What a worker computes for a batch.
pub(crate) type FetchFn<B> = dyn Fn(&[usize], u64, usize) -> Result<B> + Send + Sync;

/// A finished batch: its number in the epoch and what came of it.
type Reply<B> = (usize, Result<B>);

struct Job<B> {
    number: usize,
    indices: Vec<usize>,
    epoch: u64,
    reply: SyncSender<Reply<B>>,
    cancelled: Arc<AtomicBool>,
}

/// Worker threads, each with its queue of jobs. They live as long as the pool (across epochs)
/// and end when it is dropped.
pub(crate) struct Pool<B> {
    queues: Vec<Sender<Job<B>>>,
    handles: Vec<JoinHandle<()>>,
}

impl<B: Send + 'static> Pool<B> {
    pub(crate) fn new(workers: usize, fetch: Arc<FetchFn<B>>) -> Result<Self> {
        let mut queues = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = mpsc::channel::<Job<B>>();
            let fetch = fetch.clone();
            let handle = std::thread::Builder::new()
                .name(format!("minibatch-loader-{w}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        if job.cancelled.load(Ordering::Relaxed) {
                            continue;
                        }
                        let result = fetch(&job.indices, job.epoch, job.number);
                        // The epoch may have been dropped meanwhile: nobody to tell.
                        let _ = job.reply.send((job.number, result));
                    }
                })
                .map_err(|e| Error::Unsupported(format!("cannot start a loader worker: {e}")))?;
            queues.push(tx);
            handles.push(handle);
        }
        Ok(Pool { queues, handles })
    }
}

impl<B> Pool<B> {
    pub(crate) fn workers(&self) -> usize {
        self.queues.len()
    }
}

impl<B> Drop for Pool<B> {
    fn drop(&mut self) {
        self.queues.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// One epoch's batches coming back from the workers, in order: batch `i` goes to worker
/// `i % workers`, and each worker has at most `prefetch` batches ahead.
pub(crate) struct EpochRun<B> {
    order: Vec<Vec<usize>>,
    epoch: u64,
    first: usize,
    senders: Vec<SyncSender<Reply<B>>>,
    receivers: Vec<Receiver<Reply<B>>>,
    sent: usize,
    received: usize,
    prefetch: usize,
    cancelled: Arc<AtomicBool>,
}

impl<B> EpochRun<B> {
    /// Starts an epoch whose first batch is batch number `first` (for the transforms' seeds).
    pub(crate) fn start(pool: &Pool<B>, order: Vec<Vec<usize>>, epoch: u64, first: usize, prefetch: usize) -> Self {
        let (senders, receivers) = (0..pool.workers()).map(|_| mpsc::sync_channel(prefetch)).unzip();
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut run = EpochRun { order, epoch, first, senders, receivers, sent: 0, received: 0, prefetch, cancelled };
        run.fill(pool);
        run
    }

    fn fill(&mut self, pool: &Pool<B>) {
        let w = pool.workers();
        while self.sent < self.order.len() && self.sent < self.received + w * self.prefetch {
            let number = self.sent;
            let job = Job {
                number: self.first + number,
                indices: std::mem::take(&mut self.order[number]),
                epoch: self.epoch,
                reply: self.senders[number % w].clone(),
                cancelled: self.cancelled.clone(),
            };
            // A worker whose queue is closed has ended; `next` notices it and reports.
            let _ = pool.queues[number % w].send(job);
            self.sent += 1;
        }
    }

    /// The next batch, or `None` at the end of the epoch. Never blocks forever: a worker that
    /// has ended is an error.
    pub(crate) fn next(&mut self, pool: &Pool<B>) -> Option<Result<B>> {
        if self.received >= self.order.len() {
            return None;
        }
        let w = self.received % pool.workers();
        let got = loop {
            match self.receivers[w].recv_timeout(Duration::from_millis(200)) {
                Ok(got) => break Ok(got),
                Err(RecvTimeoutError::Timeout) if !pool.handles[w].is_finished() => continue,
                Err(_) => break Err(Error::Unsupported(format!("loader worker {w} stopped"))),
            }
        };
        self.received += 1;
        self.fill(pool);
        Some(match got {
            Ok((number, result)) if number == self.first + self.received - 1 => result,
            Ok((number, _)) => Err(Error::Unsupported(format!("loader worker {w} sent batch {number} out of order"))),
            Err(e) => Err(e),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn position(&self) -> usize {
        self.received
    }
}

impl<B> Drop for EpochRun<B> {
    fn drop(&mut self) {
        // Jobs still queued are skipped; replies already sent are dropped with the channels.
        self.cancelled.store(true, Ordering::Relaxed);
    }
}
