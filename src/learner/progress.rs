//! Live progress: a bar per epoch and a results table, in the style of fastprogress.

use super::{Callback, Ctx, Flow};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress bar on standard error while an epoch trains (live loss, images per second, time
/// left), redrawn at most ten times a second and only when standard error is a terminal; and a
/// table row per epoch on standard output (`epoch train_loss valid_loss accuracy img/s time`),
/// or on the writer given to [`with_output`](Progress::with_output). A closed or full output
/// stops the table, never the training.
pub struct Progress {
    out: Box<dyn Write>,
    bar: bool,
    started: Instant,
    last_draw: Option<Instant>,
    images: usize,
    header: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// A bar if standard error is a terminal, plain table rows otherwise.
    pub fn new() -> Self {
        Progress {
            out: Box::new(std::io::stdout()),
            bar: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_draw: None,
            images: 0,
            header: false,
        }
    }

    /// The same, writing the table to `out`.
    pub fn with_output(mut self, out: impl Write + 'static) -> Self {
        self.out = Box::new(out);
        self
    }

    fn draw(&mut self, cx: &Ctx) {
        let s = cx.state;
        let total = s.batches_per_epoch.max(1);
        let done = s.batch.min(total);
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.images as f64 / secs;
        let left = secs / done.max(1) as f64 * (total - done) as f64;
        let width = 30;
        let filled = done * width / total;
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(width - filled));
        eprint!("\r[{bar}] {done}/{total}  loss {:.4}  {:.0} img/s  {:.1}s left   ", s.loss, rate, left);
        let _ = std::io::stderr().flush();
    }
}

impl Callback for Progress {
    fn before_epoch(&mut self, _cx: &mut Ctx) -> Flow {
        self.started = Instant::now();
        self.images = 0;
        Flow::Continue
    }
    fn after_batch(&mut self, cx: &mut Ctx) -> Flow {
        self.images += cx.state.batch_size;
        let due = self.last_draw.is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if self.bar && due {
            self.draw(cx);
            self.last_draw = Some(Instant::now());
        }
        Flow::Continue
    }
    fn after_epoch(&mut self, cx: &mut Ctx) -> Flow {
        if self.bar {
            eprint!("\r{}\r", " ".repeat(90));
        }
        let s = cx.state;
        if !self.header {
            let mut h = format!("{:>5}  {:>10}", "epoch", "train_loss");
            for (n, _) in &s.metrics {
                h.push_str(&format!("  {n:>10}"));
            }
            let _ = writeln!(self.out, "{h}  {:>9}  {:>6}", "img/s", "time");
            self.header = true;
        }
        let mut row = format!("{:>5}  {:>10.4}", s.epoch + 1, s.train_loss);
        for (_, v) in &s.metrics {
            row.push_str(&format!("  {v:>10.4}"));
        }
        let secs = self.started.elapsed().as_secs_f64();
        let _ = write!(self.out, "{row}  {:>9.0}  {secs:>5.2}s", self.images as f64 / secs.max(1e-9));
        // An epoch stopped part-way (Ctrl-C, a callback) says so: its training loss is of the
        // batches it ran.
        let _ = if !s.epoch_complete() {
            writeln!(self.out, "  (stopped after batch {} of {})", s.batch, s.batches_per_epoch)
        } else {
            writeln!(self.out)
        };
        Flow::Continue
    }
}
