//! The training benchmark behind `minibatch bench` and `cargo bench`: named configurations,
//! each trained on MNIST by the loop `minibatch train` runs (a `Learner`, its callbacks
//! included), on the fused kernels and on candle's own operations, against the floor of their
//! matrix multiplies.

use crate::data::DataLoader;
use crate::error::Result;
use crate::fast::{matmul_floor, with_candle_ops};
use crate::learner::{Callback, Ctx, DivergenceGuard, Flow, Learner};
use crate::mnist::Mnist;
use crate::module::Module;
use crate::optim::{Sgd, SgdConfig};
use crate::precision::{autocast, Precision};
use crate::train::{Architecture, MNIST_INPUT};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

/// A model and its training settings.
#[derive(Debug, Clone, Serialize)]
pub struct BenchConfig {
    /// Its name on the command line.
    pub name: &'static str,
    /// The model.
    #[serde(skip)]
    pub arch: Architecture,
    /// Batch size.
    pub bs: usize,
    /// SGD's learning rate.
    pub lr: f64,
    /// SGD's momentum.
    pub momentum: f64,
    /// Train on the first this many training images (and validate on a fifth as many of the
    /// validation images) rather than all of them: an epoch of the large models on all 50,000
    /// would take minutes.
    pub train_images: Option<usize>,
}

/// The configurations: `notebook` (784-50-10, batches of 64, lr 0.5), `wide` (784-1024-10, 256,
/// 0.1), `deep` (784-512-512-512-10, 128, 0.1), the lesson's [`cnn`](crate::cnn) without
/// (`cnn`) and with batch norm (`cnn-bn`) (128, lr 0.1, momentum 0.9), and lesson 11's
/// `xresnet18`, `xresnet34` and `xresnet50` (64, lr 0.1, momentum 0.9) on the first 3,200
/// training images.
pub fn configs() -> Vec<BenchConfig> {
    let mlp = |name, sizes: &[usize], bs, lr| BenchConfig {
        name,
        arch: Architecture::Mlp(sizes.to_vec()),
        bs,
        lr,
        momentum: 0.0,
        train_images: None,
    };
    let conv = |name, arch, bs, train_images| BenchConfig { name, arch, bs, lr: 0.1, momentum: 0.9, train_images };
    let xresnet =
        |name, depth| conv(name, Architecture::XResNet { depth, classes: 10, input: MNIST_INPUT }, 64, Some(3200));
    vec![
        mlp("notebook", &[784, 50, 10], 64, 0.5),
        mlp("wide", &[784, 1024, 10], 256, 0.1),
        mlp("deep", &[784, 512, 512, 512, 10], 128, 0.1),
        conv("cnn", Architecture::Cnn { classes: 10, input: MNIST_INPUT }, 128, None),
        conv("cnn-bn", Architecture::CnnBn { classes: 10, input: MNIST_INPUT }, 128, None),
        xresnet("xresnet18", 18),
        xresnet("xresnet34", 34),
        xresnet("xresnet50", 50),
    ]
}

/// Which implementation trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The same model on candle's own operations ([`with_candle_ops`]): `cross_entropy` as
    /// `nll(log_softmax)`.
    Plain,
    /// [`crate::mlp`] as every user gets it: the fused kernels, feature-major hidden
    /// activations, the fused cross-entropy, in-place SGD.
    Fast,
}

/// What one configuration measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// The configuration's name.
    pub config: &'static str,
    /// The implementation.
    pub path: Engine,
    /// Seconds of each training epoch (validation not included).
    pub epoch_seconds: Vec<f64>,
    /// Their median.
    pub median_epoch_seconds: f64,
    /// Training images per second at the median.
    pub samples_per_second: f64,
    /// Microseconds per training step at the median.
    pub us_per_step: f64,
    /// Validation accuracy after the last epoch.
    pub valid_accuracy: f64,
    /// Seconds of the matrix multiplies alone of one epoch (an MLP's; none for a CNN).
    pub floor_seconds: Option<f64>,
    /// `median_epoch_seconds / floor_seconds`.
    pub ratio_to_floor: Option<f64>,
    /// Where an epoch's time goes (the mean over the epochs).
    pub phase_seconds: Phases,
    /// The precision of the products.
    pub precision: Precision,
    /// For a bf16 run, the fp32 matmul floor of the same epoch (`floor_seconds` is the bf16 one).
    pub fp32_floor_seconds: Option<f64>,
}

/// Trains `config` for `epochs` epochs (seed 0) with `path` and measures it, in fp32.
pub fn run(config: &BenchConfig, path: Engine, epochs: usize, data: &Mnist) -> Result<BenchResult> {
    run_in(config, path, Precision::Fp32, epochs, data)
}

/// [`run`] with the learner's products in `precision` (the fast path's: candle's own operations,
/// the plain path, are fp32); with bf16 the result also holds the fp32 matmul floor beside the
/// bf16 one.
pub fn run_in(
    config: &BenchConfig,
    path: Engine,
    precision: Precision,
    epochs: usize,
    data: &Mnist,
) -> Result<BenchResult> {
    match path {
        Engine::Plain => with_candle_ops(|| measure(config, path, Precision::Fp32, epochs, data)),
        Engine::Fast => measure(config, path, precision, epochs, data),
    }
}

/// Where a training epoch's time goes, in seconds per epoch: from one hook of the loop to the
/// next, so the parts add up to the mean epoch (not to the median that
/// [`BenchResult::median_epoch_seconds`] reports).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Phases {
    /// Waiting for the next batch from the loader (after one batch, before the next).
    pub data: f64,
    /// The model's forward.
    pub forward: f64,
    /// The loss, read back as a number.
    pub loss: f64,
    /// The backward (and, in a data-parallel run, the gradients' exchange).
    pub backward: f64,
    /// The optimizer's step.
    pub step: f64,
    /// Zeroing the gradients and the loop's own bookkeeping after the step.
    pub other: f64,
}

impl Phases {
    fn scaled(self, f: f64) -> Self {
        let Phases { data, forward, loss, backward, step, other } = self;
        Phases {
            data: data * f,
            forward: forward * f,
            loss: loss * f,
            backward: backward * f,
            step: step * f,
            other: other * f,
        }
    }
}

/// Times each training epoch (validation left out) and the phases of its batches.
#[derive(Default)]
struct Timer {
    epochs: Vec<f64>,
    phases: Phases,
    epoch_start: Option<Instant>,
    last: Option<Instant>,
}

impl Timer {
    /// Adds the time since the last hook to `phase`.
    fn lap(&mut self, phase: fn(&mut Phases) -> &mut f64) -> Flow {
        let now = Instant::now();
        if let Some(last) = self.last.replace(now) {
            *phase(&mut self.phases) += (now - last).as_secs_f64();
        }
        Flow::Continue
    }
}

/// The bench's [`Timer`], shared with the learner that calls it.
struct Timed(Rc<RefCell<Timer>>);

impl Callback for Timed {
    fn before_train(&mut self, _: &mut Ctx) -> Flow {
        let mut t = self.0.borrow_mut();
        (t.epoch_start, t.last) = (Some(Instant::now()), Some(Instant::now()));
        Flow::Continue
    }
    fn before_batch(&mut self, _: &mut Ctx) -> Flow {
        self.0.borrow_mut().lap(|p| &mut p.data)
    }
    fn after_forward(&mut self, _: &mut Ctx) -> Flow {
        self.0.borrow_mut().lap(|p| &mut p.forward)
    }
    fn after_loss(&mut self, _: &mut Ctx) -> Flow {
        self.0.borrow_mut().lap(|p| &mut p.loss)
    }
    fn after_backward(&mut self, _: &mut Ctx) -> Flow {
        self.0.borrow_mut().lap(|p| &mut p.backward)
    }
    fn after_step(&mut self, _: &mut Ctx) -> Flow {
        self.0.borrow_mut().lap(|p| &mut p.step)
    }
    fn after_batch(&mut self, _: &mut Ctx) -> Flow {
        self.0.borrow_mut().lap(|p| &mut p.other)
    }
    fn after_train(&mut self, _: &mut Ctx) -> Flow {
        let mut t = self.0.borrow_mut();
        let epoch = t.epoch_start.take().map(|s| s.elapsed().as_secs_f64());
        t.epochs.extend(epoch);
        Flow::Continue
    }
}

/// The loop `minibatch train` runs (a [`Learner`] with the divergence guard), timed.
fn measure(
    config: &BenchConfig,
    path: Engine,
    precision: Precision,
    epochs: usize,
    data: &Mnist,
) -> Result<BenchResult> {
    let (train, valid) = match config.train_images {
        Some(n) => (data.train.slice(0, n.min(data.train.len()))?, data.valid.slice(0, (n / 5).min(data.valid.len()))?),
        None => (data.train.clone(), data.valid.clone()),
    };
    let (train_dl, valid_dl) = crate::data::get_dls(train, valid, config.bs)?;
    let batches = train_dl.len();
    let model = config.arch.build(0)?;
    let sgd = SgdConfig { lr: config.lr, momentum: config.momentum, ..Default::default() };
    let opt = Sgd::with_config(model.parameters(), sgd)?;
    let timer = Rc::new(RefCell::new(Timer::default()));
    let mut learn = Learner::new(model, crate::loss::cross_entropy, opt, train_dl, valid_dl)
        .with_callback(DivergenceGuard::new(10))
        .with_callback(Timed(timer.clone()))
        .precision(precision);
    learn.fit(epochs)?;
    let (epoch_seconds, phases) = (timer.borrow().epochs.clone(), timer.borrow().phases);
    let phases = phases.scaled(1.0 / epoch_seconds.len().max(1) as f64);
    let median = median(&epoch_seconds);
    let n = batches * config.bs;
    let floor_in = |p: Precision| match &config.arch {
        Architecture::Mlp(sizes) => Some(autocast(p, || matmul_floor(sizes, n, config.bs)).as_secs_f64()),
        _ => None,
    };
    let floor = floor_in(precision);
    let fp32_floor = if precision == Precision::Fp32 { None } else { floor_in(Precision::Fp32) };
    Ok(BenchResult {
        config: config.name,
        path,
        median_epoch_seconds: median,
        samples_per_second: n as f64 / median,
        us_per_step: median / batches as f64 * 1e6,
        valid_accuracy: learn.state.metric("accuracy").unwrap_or(f64::NAN),
        precision,
        floor_seconds: floor,
        ratio_to_floor: floor.map(|f| median / f),
        fp32_floor_seconds: fp32_floor,
        epoch_seconds,
        phase_seconds: phases,
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        f64::NAN
    } else {
        s[s.len() / 2]
    }
}

/// Batches per second of one shuffled epoch of `loader`, collated (what the data pipeline
/// alone delivers).
pub fn loader_batches_per_second<D, C>(loader: &DataLoader<D, C>) -> Result<f64>
where
    D: crate::data::Dataset,
    C: crate::data::Collate<D::Item>,
{
    let start = Instant::now();
    let mut n = 0usize;
    for b in loader.iter() {
        std::hint::black_box(b?);
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// The process's peak resident memory in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
