//! Matrix multiplies with bfloat16 operands and `f32` accumulation: the products of the layers
//! under [`Precision::Bf16`](crate::precision::Precision::Bf16).
//!
//! Both operands are rounded to bf16 (to nearest, ties to even; subnormals to zero, as the
//! processor's own conversion does) while they are packed into 16x16 tiles of bf16 pairs; each
//! output element adds its products up in `f32`, always in the same order, however many threads
//! share the work. Three ways to run the tiles, picked once per process:
//!
//! - **AMX** (`amx.rs`): Intel's tile unit (`tdpbf16ps`, a 16x16x32 product per instruction), on
//!   processors that have it once Linux grants the process its tile state;
//! - **AVX512-BF16** (`dot.rs`): `vdpbf16ps`, 16 lanes of two-term dot products (AMD Zen 4, Intel
//!   Cooper Lake and later);
//! - **rounded**: elsewhere, the operands are rounded to bf16 values held in `f32` and multiplied by
//!   the `f32` kernel: the same rounding, so the same training run up to summation order, without
//!   the speed.

mod amx;
mod dot;
mod pack;

use super::gemm::{self, View, ViewMut};
use super::team;
use pack::{Packed, TILE};
pub(crate) use pack::{Source, View16};

use std::cell::RefCell;
use std::sync::OnceLock;

/// How this process runs bf16 products.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Unit {
    Amx,
    Dot,
    Rounded,
}

/// The fastest way this processor has, found once.
pub(crate) fn unit() -> Unit {
    static UNIT: OnceLock<Unit> = OnceLock::new();
    *UNIT.get_or_init(|| {
        if amx::available() {
            Unit::Amx
        } else if dot::available() {
            Unit::Dot
        } else {
            Unit::Rounded
        }
    })
}

/// Whether this processor multiplies bf16 in hardware (AMX or AVX512-BF16).
pub(crate) fn hardware() -> bool {
    unit() != Unit::Rounded
}

/// `x` rounded to bf16, as an `f32` (see [`crate::precision::to_bf16`]).
pub(crate) fn round(x: f32) -> f32 {
    crate::precision::to_bf16(x)
}

/// The bits of `x` rounded to bf16.
pub(crate) fn bits(x: f32) -> u16 {
    crate::precision::bf16_bits(x)
}

thread_local! {
    /// Reused buffers for the packed operands.
    static PACKS: RefCell<(Vec<u32>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] · rhs[k, n]` with bf16 operands, in at most
/// `parts` blocks on the kernels' team (see [`gemm::matmul_from`] for the operands' contract).
#[inline(never)]
pub(crate) fn matmul(parts: usize, mnk: (usize, usize, usize), dst: ViewMut, accumulate: bool, lhs: View, rhs: View) {
    matmul_on(unit(), parts, mnk, dst, accumulate, Source::F32(lhs), Source::F32(rhs.flipped()))
}

/// [`matmul`] of operands given by their lines: `lhs` the `m` rows of the left operand, `rhs`
/// the `n` columns of the right one, each `k` long, either in `f32` or already in bf16. The
/// caller checks that `dst` holds `m x n` and the operands their lines.
pub(crate) fn matmul_sources(
    parts: usize,
    mnk: (usize, usize, usize),
    dst: ViewMut,
    accumulate: bool,
    lhs: Source,
    rhs: Source,
) {
    matmul_on(unit(), parts, mnk, dst, accumulate, lhs, rhs)
}

/// [`matmul_sources`] on `unit`, which the processor must have.
fn matmul_on(
    unit: Unit,
    parts: usize,
    (m, n, k): (usize, usize, usize),
    dst: ViewMut,
    accumulate: bool,
    lhs: Source,
    rhs: Source,
) {
    if m == 0 || n == 0 {
        return;
    }
    if unit == Unit::Rounded || k == 0 {
        return match (lhs, rhs) {
            (Source::F32(l), Source::F32(r)) => rounded(parts, (m, n, k), dst, accumulate, l, r.flipped()),
            _ => {
                let (l, r) = (lhs.to_rows(m, k), rhs.to_rows(n, k));
                rounded(parts, (m, n, k), dst, accumulate, View::rows(&l, k), View::transposed(&r, k))
            }
        };
    }
    let (mut lbuf, mut rbuf) = (Vec::new(), Vec::new());
    let (lhs, rhs) = (contiguous(lhs, m, k, &mut lbuf), contiguous(rhs, n, k, &mut rbuf));
    // Tiles are written row by row: a destination contiguous down its columns is the transposed
    // product, `dstᵀ = rhsᵀ lhsᵀ`, whose left operand's lines are the right one's.
    let (m, n, dst, lhs, rhs) =
        if dst.cs != 1 && dst.rs == 1 { (n, m, dst.flipped(), rhs, lhs) } else { (m, n, dst, lhs, rhs) };
    let run = |packs: &mut (Vec<u32>, Vec<u32>)| {
        let (a, b) = (Packed::new(&mut packs.0, m, k), Packed::new(&mut packs.1, n, k));
        tiled(unit, parts, dst, accumulate, (a, Some(lhs)), (b, Some(rhs)))
    };
    PACKS.with(|packs| match packs.try_borrow_mut() {
        Ok(mut packs) => run(&mut packs),
        Err(_) => run(&mut (Vec::new(), Vec::new())),
    })
}

/// `src` (`len` lines of `k`) as it is when it runs along its lines or its steps, else copied
/// into `buf` as contiguous lines, in the order of its memory: packing reads a tile at a time,
/// sixteen lines far apart, and an operand strided both ways (a cut convolution's weight, one
/// float in nine) would cost it a line of memory per float, converted one by one.
fn contiguous<'a>(src: Source<'a>, len: usize, k: usize, buf: &'a mut Vec<f32>) -> Source<'a> {
    let Source::F32(v) = src else { return src };
    if v.rs == 1 || v.cs == 1 || len == 0 || k == 0 {
        return src;
    }
    buf.resize(len * k, 0.0);
    if v.rs >= v.cs {
        for (l, line) in buf.chunks_exact_mut(k).enumerate() {
            line.iter_mut().enumerate().for_each(|(s, d)| *d = v.data[l * v.rs + s * v.cs]);
        }
    } else {
        for s in 0..k {
            (0..len).for_each(|l| buf[l * k + s] = v.data[l * v.rs + s * v.cs]);
        }
    }
    Source::F32(View::rows(buf, k))
}

/// A left operand packed once for several products with the same left operand (a convolution's
/// weight, which every block of images multiplies): `m` lines of `k`.
pub(crate) struct PackedLhs {
    buf: Vec<u32>,
    m: usize,
    k: usize,
}

impl PackedLhs {
    /// `lhs` (`m x k`) packed on this thread, for products in hardware ([`hardware`]).
    pub fn new(m: usize, k: usize, lhs: View) -> PackedLhs {
        let (mut buf, mut lines) = (Vec::new(), Vec::new());
        Packed::new(&mut buf, m, k).pack_share(contiguous(Source::F32(lhs), m, k, &mut lines), false, 0, 1);
        PackedLhs { buf, m, k }
    }

    /// Lines and steps: `(m, k)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.m, self.k)
    }

    /// `dst = (accumulate ? dst : 0) + self · rhs` on this thread, `rhs` `k x n`, `dst` `m x n`
    /// with contiguous rows: [`matmul`]'s sums, with the left operand's packing done once.
    /// The caller checks the sizes ([`gemm::matmul_packed`]).
    pub fn multiply(&mut self, n: usize, dst: ViewMut, accumulate: bool, rhs: View) {
        let (m, k) = (self.m, self.k);
        if m == 0 || n == 0 {
            return;
        }
        let a = Packed::new(&mut self.buf, m, k);
        let run = |packs: &mut (Vec<u32>, Vec<u32>)| {
            let b = Packed::new(&mut packs.1, n, k);
            tiled(unit(), 1, dst, accumulate, (a, None), (b, Some(Source::F32(rhs.flipped()))))
        };
        PACKS.with(|packs| match packs.try_borrow_mut() {
            Ok(mut packs) => run(&mut packs),
            Err(_) => run(&mut (Vec::new(), Vec::new())),
        })
    }
}

/// Packs the operands given as sources (`None`: packed already) and multiplies them tile by
/// tile, on up to `parts` threads: each packs a share of both, then each computes whole blocks
/// of the output, every element summed in the order of the tiles along `k`.
fn tiled(
    unit: Unit,
    parts: usize,
    dst: ViewMut,
    accumulate: bool,
    (a, lhs): (Packed, Option<Source>),
    (b, rhs): (Packed, Option<Source>),
) {
    let (rows, cols) = (a.blocks(), b.blocks());
    let parts = parts.min(rows.max(cols)).max(1);
    team::run(parts, &|p| {
        if let Some(lhs) = lhs {
            a.pack_share(lhs, false, p, parts);
        }
        if let Some(rhs) = rhs {
            b.pack_share(rhs, true, p, parts);
        }
    });
    let by_rows = rows >= cols;
    let (m, n) = (a.len, b.len);
    let out = dst.shared();
    team::run(parts, &|p| {
        let whole = if by_rows { rows } else { cols };
        let (from, to) = (p * whole / parts, (p + 1) * whole / parts);
        let (rows, cols) = if by_rows { (from..to, 0..cols) } else { (0..rows, from..to) };
        let write = |r0: usize, c0: usize, tile: &[f32; 4 * TILE * TILE]| {
            let corner = ((m - r0).min(2 * TILE), (n - c0).min(2 * TILE));
            // SAFETY: parts write disjoint blocks of rows or columns of `dst`, each inside the
            // m x n that `gemm::matmul_from` checked the destination holds.
            unsafe { out.write((r0, c0), corner, tile, 2 * TILE, accumulate) }
        };
        // A whole 32 x 32 block of a destination with contiguous rows is there for the tile unit
        // to load (when accumulating) and store itself.
        let direct =
            |r0: usize, c0: usize| if r0 + 2 * TILE <= m && c0 + 2 * TILE <= n { out.rows_at(r0, c0) } else { None };
        match unit {
            Unit::Amx => amx::multiply(&a, &b, (rows, cols), accumulate, direct, write),
            _ => dot::multiply(&a, &b, (rows, cols), write),
        }
    });
}

/// The rounded way: both operands rounded to bf16 values in `f32`, then the `f32` kernel.
pub(crate) fn rounded(
    parts: usize,
    (m, n, k): (usize, usize, usize),
    dst: ViewMut,
    accumulate: bool,
    lhs: View,
    rhs: View,
) {
    // Each operand's memory rounded whole (views may skip some of it; rounding those too costs
    // less than gathering), read with the operand's own strides: the layouts the caller chose
    // for the f32 kernel stay.
    let copy = |v: View| -> Vec<f32> { v.data.iter().map(|&x| round(x)).collect() };
    let (l, r) = (copy(lhs), copy(rhs));
    let (lhs, rhs) = (View { data: &l, ..lhs }, View { data: &r, ..rhs });
    gemm::multiply(parts, (m, n, k), dst, accumulate, lhs, rhs)
}

#[cfg(test)]
mod tests;
