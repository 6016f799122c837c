//! Data-parallel training through a `Collective` of the user's own: two threads of one process
//! stand for two processes (no MPI needed), exchanging through a mutex and a barrier. Two
//! learners on half batches must take the steps of one learner on whole batches.

mod common;
use common::mnist_dir;
use minibatch::data::ShardSampler;
use minibatch::distributed::Collective;
use minibatch::learner::Learner;
use minibatch::learner::{Callback, Ctx, Flow};
use minibatch::{cross_entropy, mlp, DataLoader, DistributedSampler, Mnist, Module, Result, Sgd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What two threads share: each one's latest values, and where they meet.
#[derive(Default)]
struct Meeting {
    values: Mutex<[Vec<f64>; 2]>,
    /// Threads arrived at the current meeting, and meetings held.
    met: Mutex<(usize, u64)>,
    all_here: Condvar,
}

impl Meeting {
    /// Waits for the other thread; a thread left waiting for 20 s panics (a learner that never
    /// comes is a hang, and the test must say so rather than wait for ever).
    fn meet(&self) {
        let mut met = self.met.lock().unwrap();
        let held = met.1;
        met.0 += 1;
        if met.0 == 2 {
            *met = (0, held + 1);
            self.all_here.notify_all();
            return;
        }
        while met.1 == held {
            let (guard, waited) = self.all_here.wait_timeout(met, Duration::from_secs(20)).unwrap();
            met = guard;
            assert!(!waited.timed_out() || met.1 != held, "the other learner never came");
        }
    }
}

/// One of two threads, as a process of a data-parallel run.
struct Pair {
    rank: usize,
    meeting: Arc<Meeting>,
}

impl Pair {
    /// Leaves `data` for the other thread and returns both threads' values, by rank.
    fn swap(&self, data: Vec<f64>) -> [Vec<f64>; 2] {
        self.meeting.values.lock().unwrap()[self.rank] = data;
        self.meeting.meet();
        let both = self.meeting.values.lock().unwrap().clone();
        // Nobody overwrites its values before both have read them.
        self.meeting.meet();
        both
    }
}

impl Collective for Pair {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        2
    }
    fn all_reduce_sum(&self, data: &[f32], sum: &mut [f32]) -> Result<()> {
        let [a, b] = self.swap(data.iter().map(|&v| v as f64).collect());
        sum.iter_mut().zip(a.iter().zip(&b)).for_each(|(s, (a, b))| *s = *a as f32 + *b as f32);
        Ok(())
    }
    fn all_reduce_sum_f64(&self, data: &mut [f64]) -> Result<()> {
        let [a, b] = self.swap(data.to_vec());
        data.iter_mut().zip(a.iter().zip(&b)).for_each(|(s, (a, b))| *s = a + b);
        Ok(())
    }
    fn broadcast(&self, data: &mut [f64], root: usize) -> Result<()> {
        let both = self.swap(data.to_vec());
        data.copy_from_slice(&both[root]);
        Ok(())
    }
    fn abort(&self, code: i32) -> ! {
        panic!("aborted with {code}")
    }
}

/// Trains the notebook's model for one epoch on 3,000 images, `size` learners of `bs` each, and
/// returns this learner's weights and validation accuracy.
fn train(world: impl Collective + 'static, bs: usize) -> Result<(Vec<Vec<f32>>, f64)> {
    train_with(world, bs, None).map(|(weights, accuracy, _)| (weights, accuracy))
}

/// [`train`] with the test's callback, also returning the steps taken.
fn train_with(
    world: impl Collective + 'static,
    bs: usize,
    stop: Option<StopAt>,
) -> Result<(Vec<Vec<f32>>, f64, usize)> {
    let (rank, size) = (world.rank(), world.size());
    let data = Mnist::load(mnist_dir())?;
    let (train, valid) = (data.train.slice(0, 3000)?, data.valid.slice(0, 1000)?);
    let (nt, nv) = (train.len(), valid.len());
    let train = DataLoader::builder(train).sampler(DistributedSampler::new(nt, size, rank, 0)?).batch_size(bs);
    let valid = DataLoader::builder(valid).sampler(ShardSampler::new(nv, size, rank)?).batch_size(100);
    // Each learner starts from other weights: process 0's reach the other before the first step.
    let model = mlp(&[784, 50, 10], rank as u64)?;
    let opt = Sgd::new(model.parameters(), 0.5)?;
    let mut learn =
        Learner::new(model, cross_entropy, opt, train.drop_last(true).build()?, valid.build()?).data_parallel(world);
    if let Some(stop) = stop {
        learn.add_callback(stop);
    }
    learn.fit(1)?;
    let weights: candle_core::Result<Vec<Vec<f32>>> =
        learn.model.parameters().iter().map(|p| p.tensor().flatten_all()?.to_vec1::<f32>()).collect();
    Ok((weights?, learn.state.metric("accuracy").unwrap_or(f64::NAN), learn.state.iter))
}

#[test]
fn two_learners_of_half_batches_take_the_steps_of_one() {
    let meeting = Arc::new(Meeting::default());
    let threads: Vec<_> = (0..2)
        .map(|rank| {
            let pair = Pair { rank, meeting: meeting.clone() };
            std::thread::spawn(move || train(pair, 32).unwrap())
        })
        .collect();
    let [(w0, acc0), (w1, acc1)]: [_; 2] =
        threads.into_iter().map(|t| t.join().unwrap()).collect::<Vec<_>>().try_into().unwrap();
    assert_eq!(w0, w1, "both learners hold the same bits");
    assert_eq!(acc0, acc1, "both report the accuracy over the whole validation set");
    let (one, acc) = train(minibatch::distributed::SingleProcess, 64).unwrap();
    let diff = one.iter().flatten().zip(w0.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-5, "weights differ from one learner's by {diff}");
    assert!((acc - acc0).abs() < 1e-6, "accuracy {acc0} against one learner's {acc}");
    assert!(acc > 0.7, "one epoch trains: accuracy {acc}");
}

/// Stops training at one batch from one hook: a request made on one process alone, before the
/// gradient exchange (`after_loss`) or after it (`after_backward`, `after_batch`).
struct StopAt(usize, &'static str);

impl StopAt {
    fn at(&self, hook: &str, cx: &Ctx) -> Flow {
        if hook == self.1 && cx.state.batch == self.0 {
            Flow::StopFit
        } else {
            Flow::Continue
        }
    }
}

impl Callback for StopAt {
    fn after_loss(&mut self, cx: &mut Ctx) -> Flow {
        self.at("after_loss", cx)
    }
    fn after_backward(&mut self, cx: &mut Ctx) -> Flow {
        self.at("after_backward", cx)
    }
    fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
        self.at("after_batch", cx)
    }
}

#[test]
fn a_stop_one_learner_asks_for_stops_both_at_the_same_batch() {
    for hook in ["after_loss", "after_backward", "after_batch"] {
        let meeting = Arc::new(Meeting::default());
        let threads: Vec<_> = (0..2)
            .map(|rank| {
                let pair = Pair { rank, meeting: meeting.clone() };
                std::thread::spawn(move || train_with(pair, 32, (rank == 1).then_some(StopAt(5, hook))).unwrap())
            })
            .collect();
        let done: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        // Five steps each (batches 0-4: from `after_loss` and `after_backward` the sixth batch
        // is not stepped; `after_batch` sees `state.batch` counted on, 5 after the fifth), then
        // they validate together.
        assert_eq!((done[0].2, done[1].2), (5, 5), "{hook}");
        assert_eq!(done[0].0, done[1].0, "{hook}: the same weights");
        assert_eq!(done[0].1, done[1].1, "{hook}: the same validation figures");
    }
}
