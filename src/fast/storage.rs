//! Reading a tensor's `f32` data in place.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Storage, Tensor};

/// The contiguous `f32` values of a CPU storage under `layout`.
pub(crate) fn cpu_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let Some((start, end)) = l.contiguous_offsets() else { bail!("{what}: expected a contiguous tensor") };
    match s {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        other => bail!("{what}: expected f32, found {:?}", other.dtype()),
    }
}

/// Runs `f` on the contiguous `f32` values of a CPU tensor.
pub(crate) fn with_f32<R>(
    t: &Tensor,
    what: &str,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(cpu_f32(s, layout, what)?),
        _ => bail!("{what}: the fast path runs on the CPU"),
    }
}
