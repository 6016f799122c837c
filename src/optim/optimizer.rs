//! `RuleOptimizer`: parameter groups, per-parameter state and the update loop, shared by every rule.

use super::{Hyper, Optimizer, Rule, Slot};
use crate::error::{Error, Result};
use crate::module::{no_grad, Param};
use candle_core::{Device, Tensor};
use std::collections::HashMap;

/// Parameters with names, from `model.named_parameters()` or a plain `Vec<Param>` (then named
/// `0`, `1`, ...).
pub trait IntoNamedParams {
    /// The parameters with their names.
    fn into_named(self) -> Vec<(String, Param)>;
}

impl IntoNamedParams for Vec<(String, Param)> {
    fn into_named(self) -> Vec<(String, Param)> {
        self
    }
}

impl IntoNamedParams for Vec<Param> {
    fn into_named(self) -> Vec<(String, Param)> {
        self.into_iter().enumerate().map(|(i, p)| (i.to_string(), p)).collect()
    }
}

/// A set of parameters sharing hyperparameters.
#[derive(Debug, Clone)]
pub struct Group<C> {
    /// Indices into the optimizer's parameters.
    pub members: Vec<usize>,
    /// The group's hyperparameters.
    pub config: C,
    /// The group's learning rate over the first group's, kept when a schedule sets the rate.
    lr_ratio: f64,
}

/// An optimizer: an update [`Rule`] applied to parameter groups, with per-parameter state.
///
/// ```
/// use minibatch::{get_model, Adam, AdamConfig, Module};
/// let (model, _) = get_model(4, 8, 3, 0.1, 0)?;
/// // No weight decay on biases, and a tenth of the learning rate for the first layer.
/// let opt = Adam::with_config(model.named_parameters(), AdamConfig { lr: 1e-3, weight_decay: 0.01, ..Default::default() })?
///     .group(|name| name.ends_with("bias"), |c| c.weight_decay = 0.0)?
///     .group(|name| name == "0.weight", |c| c.lr = 1e-4)?;
/// assert_eq!(opt.groups().len(), 3);
/// # Ok::<(), minibatch::Error>(())
/// ```
pub struct RuleOptimizer<R: Rule> {
    names: Vec<String>,
    params: Vec<Param>,
    slots: Vec<Slot>,
    groups: Vec<Group<R::Config>>,
}

impl<R: Rule> RuleOptimizer<R> {
    /// One group of every parameter with `config`.
    pub fn with_config(params: impl IntoNamedParams, config: R::Config) -> Result<Self> {
        config.validate()?;
        let (names, params): (Vec<String>, Vec<Param>) = params.into_named().into_iter().unzip();
        let slots = vec![Slot::default(); params.len()];
        let groups = vec![Group { members: (0..params.len()).collect(), config, lr_ratio: 1.0 }];
        Ok(RuleOptimizer { names, params, slots, groups })
    }

    /// Moves the parameters whose name satisfies `select` into a new group, whose
    /// hyperparameters are the first group's changed by `edit`. A parameter joins the last group
    /// that selects it.
    pub fn group(mut self, select: impl Fn(&str) -> bool, edit: impl FnOnce(&mut R::Config)) -> Result<Self> {
        let mut config = self.groups[0].config.clone();
        edit(&mut config);
        config.validate()?;
        let members: Vec<usize> = (0..self.names.len()).filter(|&i| select(&self.names[i])).collect();
        for g in &mut self.groups {
            g.members.retain(|i| !members.contains(i));
        }
        let base = self.groups[0].config.lr();
        let lr_ratio = if base > 0.0 { config.lr() / base } else { 1.0 };
        self.groups.push(Group { members, config, lr_ratio });
        Ok(self)
    }

    /// The groups.
    pub fn groups(&self) -> &[Group<R::Config>] {
        &self.groups
    }

    /// The first group's hyperparameters.
    pub fn config(&self) -> &R::Config {
        &self.groups[0].config
    }

    /// The parameter names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl<R: Rule> Optimizer for RuleOptimizer<R> {
    fn step(&mut self) -> Result<()> {
        // Hyperparameters set since construction (set_lr by a schedule, a user's set_momentum)
        // are checked as the constructor checks them: a NaN rate would train to NaN.
        for g in &self.groups {
            g.config.validate()?;
        }
        no_grad(|| {
            for g in &self.groups {
                for &i in &g.members {
                    let Some(grad) = self.params[i].grad() else { continue };
                    let slot = &mut self.slots[i];
                    slot.step += 1;
                    let value = self.params[i].tensor();
                    if !R::update_in_place(&g.config, slot, &value, &grad)? {
                        let new = R::update(&g.config, slot, &value, grad)?;
                        self.params[i].set(&new)?;
                    }
                }
            }
            Ok(())
        })
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn lr(&self) -> f64 {
        self.groups[0].config.lr()
    }

    fn set_lr(&mut self, lr: f64) {
        for g in &mut self.groups {
            g.config.set_lr(lr * g.lr_ratio);
        }
    }

    fn set_momentum(&mut self, momentum: f64) {
        for g in &mut self.groups {
            g.config.set_momentum(momentum);
        }
    }

    fn momentum(&self) -> Option<f64> {
        self.groups[0].config.momentum()
    }

    /// `{name}.step` and `{name}.{buffer}` for every parameter that has state. The buffers are
    /// copies: a rule may update its own in place (SGD's momentum does).
    fn state_dict(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (name, slot) in self.names.iter().zip(&self.slots).filter(|(_, s)| s.step > 0) {
            if let Ok(step) = Tensor::new(slot.step as i64, &Device::Cpu) {
                out.insert(format!("{name}.step"), step);
            }
            for (b, t) in &slot.buffers {
                // A copy cannot fail on the CPU; elsewhere the buffer itself is better than none.
                out.insert(format!("{name}.{b}"), t.copy().unwrap_or_else(|_| t.clone()));
            }
        }
        out
    }

    fn load_state_dict(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let mut slots = vec![Slot::default(); self.params.len()];
        for (key, t) in state {
            let matches = |n: &&String| key.strip_prefix(n.as_str()).is_some_and(|r| r.starts_with('.'));
            // The longest name that prefixes the key: `a.b` before `a` for `a.b.step`.
            let i = (0..self.names.len()).filter(|&i| matches(&&self.names[i])).max_by_key(|&i| self.names[i].len());
            let Some(i) = i else {
                return Err(Error::invalid("optimizer state", "a key named after a parameter", key));
            };
            let field = &key[self.names[i].len() + 1..];
            if let Some(known) = R::buffers().filter(|known| field != "step" && !known.contains(&field)) {
                let expected = format!("one of {known:?} after the parameter's name");
                return Err(Error::invalid("optimizer state buffer", expected, format!("`{field}` in {key}")));
            }
            if field == "step" {
                let step = t.to_dtype(candle_core::DType::I64)?.to_scalar::<i64>()?;
                // A count of steps taken: Adam's bias correction divides by 1 - beta^step.
                if step < 1 {
                    return Err(Error::invalid("optimizer state step", format!("at least 1 for {key}"), step));
                }
                slots[i].step = step as u64;
            } else if t.dims() != self.params[i].dims() {
                let expected = format!("{:?} for {key}", self.params[i].dims());
                return Err(Error::invalid("optimizer state shape", expected, format!("{:?}", t.dims())));
            } else if t.dtype() != self.params[i].tensor().dtype() {
                let expected = format!("{:?}, the parameter's, for {key}", self.params[i].tensor().dtype());
                return Err(Error::invalid("optimizer state dtype", expected, format!("{:?}", t.dtype())));
            } else {
                slots[i].put(field, t.copy()?);
            }
        }
        self.slots = slots;
        Ok(())
    }
}

impl<R: Rule> std::fmt::Debug for RuleOptimizer<R>
where
    R::Config: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<_> = self.groups.iter().map(|g| (&g.config, g.members.len())).collect();
        f.debug_struct("RuleOptimizer").field("groups", &groups).finish()
    }
}
