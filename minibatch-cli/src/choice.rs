//! Choosing an optimizer and a schedule by name, as the program's flags do.

use minibatch::optim::{Adam, AdamConfig, AdamW, IntoNamedParams, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig};
use minibatch::schedule::{Constant, Cosine, Linear, OneCycle, Phases, Schedule};
use minibatch::Result;

/// An optimizer family (serialised as its lower-case name, `sgd`, `adamw`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptKind {
    /// SGD.
    Sgd,
    /// Adam.
    Adam,
    /// AdamW.
    AdamW,
    /// RMSprop.
    RmsProp,
}

impl std::str::FromStr for OptKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "sgd" => OptKind::Sgd,
            "adam" => OptKind::Adam,
            "adamw" => OptKind::AdamW,
            "rmsprop" => OptKind::RmsProp,
            _ => return Err(format!("unknown optimizer `{s}`: expected sgd, adam, adamw or rmsprop")),
        })
    }
}

impl std::fmt::Display for OptKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OptKind::Sgd => "sgd",
            OptKind::Adam => "adam",
            OptKind::AdamW => "adamw",
            OptKind::RmsProp => "rmsprop",
        })
    }
}

impl std::fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScheduleKind::Const => "const",
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::OneCycle => "onecycle",
        })
    }
}

impl OptKind {
    /// A learning rate that works for the notebook's model: 0.5 for SGD (the notebook's), 1e-2
    /// for Adam and AdamW, 3e-3 for RMSprop (the best of sweeps on MNIST, docs/training.md).
    pub fn default_lr(self) -> f64 {
        match self {
            OptKind::Sgd => 0.5,
            OptKind::Adam | OptKind::AdamW => 1e-2,
            OptKind::RmsProp => 3e-3,
        }
    }
}

/// An optimizer described by name and the common hyperparameters.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    /// The family.
    pub kind: OptKind,
    /// Learning rate; `None` for [`OptKind::default_lr`].
    pub lr: Option<f64>,
    /// Momentum (Adam's `beta1`); `None` for the family's default (0 for SGD and RMSprop, 0.9
    /// for Adam).
    pub momentum: Option<f64>,
    /// Weight decay (decoupled for AdamW, L2 otherwise).
    pub weight_decay: f64,
}

impl OptSpec {
    /// The learning rate this spec trains with.
    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(self.kind.default_lr())
    }

    /// The optimizer over `params`.
    pub fn build(&self, params: impl IntoNamedParams) -> Result<Box<dyn Optimizer + Send>> {
        self.build_grouped(params, &[], 1.0)
    }

    /// The optimizer with the parameters named in `body` in a group of their own, at `ratio`
    /// times the rate (discriminative rates for a pretrained body).
    pub fn build_grouped(
        &self,
        params: impl IntoNamedParams,
        body: &[String],
        ratio: f64,
    ) -> Result<Box<dyn Optimizer + Send>> {
        let (lr, wd) = (self.lr(), self.weight_decay);
        let in_body = |name: &str| body.iter().any(|b| b == name);
        macro_rules! grouped {
            ($opt:expr) => {{
                let opt = $opt;
                if body.is_empty() {
                    Box::new(opt)
                } else {
                    Box::new(opt.group(in_body, |c| c.lr *= ratio)?)
                }
            }};
        }
        Ok(match self.kind {
            OptKind::Sgd => {
                let momentum = self.momentum.unwrap_or(0.0);
                grouped!(Sgd::with_config(params, SgdConfig { lr, momentum, weight_decay: wd, ..Default::default() })?)
            }
            OptKind::Adam | OptKind::AdamW => {
                let beta1 = self.momentum.unwrap_or(0.9);
                let c = AdamConfig { lr, beta1, weight_decay: wd, ..Default::default() };
                if self.kind == OptKind::Adam {
                    grouped!(Adam::with_config(params, c)?)
                } else {
                    grouped!(AdamW::with_config(params, c)?)
                }
            }
            OptKind::RmsProp => {
                let momentum = self.momentum.unwrap_or(0.0);
                let c = RmsPropConfig { lr, momentum, weight_decay: wd, ..Default::default() };
                grouped!(RmsProp::with_config(params, c)?)
            }
        })
    }
}

/// A schedule family (serialised as its lower-case name, `const`, `cosine`, `onecycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// The same rate throughout.
    Const,
    /// Cosine annealing to 0 over the run.
    Cosine,
    /// One-cycle over the run, peaking at the rate (momentum cycled too).
    OneCycle,
}

impl ScheduleKind {
    /// The flag's spelling.
    pub fn name(self) -> &'static str {
        match self {
            ScheduleKind::Const => "const",
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::OneCycle => "onecycle",
        }
    }
}

impl std::str::FromStr for ScheduleKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "const" | "constant" => ScheduleKind::Const,
            "cosine" | "cos" => ScheduleKind::Cosine,
            "onecycle" | "one-cycle" => ScheduleKind::OneCycle,
            _ => return Err(format!("unknown schedule `{s}`: expected const, cosine or onecycle")),
        })
    }
}

impl ScheduleKind {
    /// The schedule of a run of `total` steps at rate `lr`, after `warmup` steps of linear
    /// warmup from 0 (counted within `total`).
    pub fn build(self, lr: f64, total: usize, warmup: usize) -> Box<dyn Schedule + Send> {
        let rest = total.saturating_sub(warmup).max(1);
        let main: Box<dyn Schedule + Send> = match self {
            ScheduleKind::Const => Box::new(Constant(lr)),
            ScheduleKind::Cosine => Box::new(Cosine { lr, t_max: rest, eta_min: 0.0 }),
            ScheduleKind::OneCycle => Box::new(OneCycle::new(lr, rest)),
        };
        if warmup == 0 {
            return main;
        }
        let start = main.lr_at(0);
        Box::new(Phases::new().then(warmup, Linear { from: 0.0, to: start, steps: warmup }).then(rest, main))
    }
}
