//! What the training loop exchanges: the model at the start, the gradients (with the batch's loss
//! and the processes' requests) after each backward, batch norm's statistics before validating.

use super::Collective;
use crate::error::Result;
use crate::module::{Buffer, Module, Param};
use candle_core::{DType, Device, Tensor};

/// Copies every parameter and buffer of process 0 to every process, so that all start equal.
pub(crate) fn broadcast_model(c: &dyn Collective, model: &dyn Module) -> Result<()> {
    let params: Vec<Param> = model.parameters();
    let mut flat = Vec::new();
    for p in &params {
        flat.extend(p.tensor().detach().flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
    }
    c.broadcast(&mut flat, 0)?;
    let mut at = 0;
    for p in &params {
        let n = p.elem_count();
        let t = Tensor::from_slice(&flat[at..at + n], p.dims(), &Device::Cpu)?.to_dtype(p.tensor().dtype())?;
        p.set(&t)?;
        at += n;
    }
    broadcast_buffers(c, model)
}

/// Copies process 0's buffers (batch norm's running statistics, each process's own so far) to
/// every process, as PyTorch's DistributedDataParallel does: validation and saved weights are
/// then the same everywhere.
pub(crate) fn broadcast_buffers(c: &dyn Collective, model: &dyn Module) -> Result<()> {
    let buffers: Vec<Buffer> = model.named_buffers().into_iter().map(|(_, b)| b).collect();
    if buffers.is_empty() {
        return Ok(());
    }
    let mut flat = Vec::new();
    for b in &buffers {
        flat.extend(b.get().flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
    }
    c.broadcast(&mut flat, 0)?;
    let mut at = 0;
    for b in &buffers {
        let old = b.get();
        let n = old.elem_count();
        b.set(Tensor::from_slice(&flat[at..at + n], old.shape(), &Device::Cpu)?.to_dtype(old.dtype())?);
        at += n;
    }
    Ok(())
}

/// One process's part of a batch, and after [`reduce_step`] the whole batch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StepShare {
    /// The mean loss of the batch.
    pub loss: f64,
    /// Its examples.
    pub count: usize,
    /// Whether some process skips this step (a hook asked it to): then every process does.
    pub skip: bool,
    /// Whether some process was interrupted (SIGINT): then every process stops after this batch,
    /// as if interrupted itself.
    pub interrupt: bool,
    /// Whether a hook of some process asked to end training (`Flow::StopFit`) before the exchange.
    pub stop_fit: bool,
    /// Whether a hook of some process asked to end the epoch (`Flow::StopEpoch`).
    pub stop_epoch: bool,
}

/// Sums every parameter's gradient over the processes and divides by their number, in one buffer
/// (a parameter without a gradient counts as zeros), along with the loss, the count and the
/// processes' requests, so that one collective call a step carries everything. Every process
/// gets the same bits (each sum is made once, in the order of the processes, or is `a + b`).
pub(crate) fn reduce_step(c: &dyn Collective, params: &[Param], mine: StepShare) -> Result<StepShare> {
    let total: usize = params.iter().map(Param::elem_count).sum();
    let flag = |b: bool| if b { 1f32 } else { 0f32 };
    let count = if mine.skip { 0 } else { mine.count };
    let requests = [mine.skip, mine.interrupt, mine.stop_fit, mine.stop_epoch].map(flag);
    let extra = [[(mine.loss * count as f64) as f32, count as f32].as_slice(), &requests].concat();
    let world = c.size() as f32;
    let mut global = mine;
    // The gradients go straight from their tensors into the collective's buffer, and the sums
    // straight from its buffer into the gradients' own storage: one copy each way.
    c.all_reduce_sum_with(total + extra.len(), &mut |out| write_gradients(params, out, &extra), &mut |sums| {
        let (loss_sum, count, any) = (sums[total], sums[total + 1], |i: usize| sums[total + 2 + i] > 0.0);
        global = StepShare {
            loss: loss_sum as f64 / (count as f64).max(1.0),
            count: count as usize,
            skip: any(0),
            interrupt: any(1),
            stop_fit: any(2),
            stop_epoch: any(3),
        };
        if global.skip {
            params.iter().for_each(Param::zero_grad);
            Ok(())
        } else {
            read_gradients(params, &sums[..total], 1.0 / world)
        }
    })?;
    Ok(global)
}

/// Every parameter's gradient, one after the other, then `extra`.
fn write_gradients(params: &[Param], out: &mut [f32], extra: &[f32]) -> Result<()> {
    let mut at = 0;
    for p in params {
        let n = p.elem_count();
        match p.grad() {
            Some(g) if g.dtype() == DType::F32 => {
                let g = g.contiguous()?;
                crate::fast::with_f32(&g, "gradient", |v| {
                    out[at..at + n].copy_from_slice(v);
                    Ok(())
                })?;
            }
            Some(g) => out[at..at + n].copy_from_slice(&g.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?),
            None => out[at..at + n].fill(0.0),
        }
        at += n;
    }
    out[at..].copy_from_slice(extra);
    Ok(())
}

/// Sets every parameter's gradient to its slice of `sums` times `scale`.
fn read_gradients(params: &[Param], sums: &[f32], scale: f32) -> Result<()> {
    let mut at = 0;
    for p in params {
        let n = p.elem_count();
        let values = &sums[at..at + n];
        match p.grad() {
            // Written over the gradient's own storage: a fresh tensor per parameter each step
            // made the allocator fault in and zero new pages.
            Some(g) if g.dtype() == DType::F32 && g.is_contiguous() => g.inplace_op1(&Overwrite { values, scale })?,
            _ => {
                let mean: Vec<f32> = values.iter().map(|g| g * scale).collect();
                let mean = Tensor::from_vec(mean, p.dims(), &Device::Cpu)?.to_dtype(p.var().dtype())?;
                p.zero_grad();
                p.accumulate_grad(mean)?;
            }
        }
        at += n;
    }
    Ok(())
}

/// Overwrites a contiguous `f32` tensor in place with `values * scale`.
struct Overwrite<'a> {
    values: &'a [f32],
    scale: f32,
}

impl candle_core::InplaceOp1 for Overwrite<'_> {
    fn name(&self) -> &'static str {
        "overwrite"
    }

    fn cpu_fwd(&self, storage: &mut candle_core::CpuStorage, layout: &candle_core::Layout) -> candle_core::Result<()> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("overwrite: expected a contiguous tensor")
        };
        match storage {
            candle_core::CpuStorage::F32(data) if end - start == self.values.len() => {
                data[start..end].iter_mut().zip(self.values).for_each(|(d, v)| *d = v * self.scale);
                Ok(())
            }
            _ => candle_core::bail!("overwrite: expected {} f32 values", self.values.len()),
        }
    }
}
