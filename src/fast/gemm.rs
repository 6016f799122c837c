//! Matrix multiplies on `f32` slices through the `gemm` crate (the kernel candle itself uses).

use super::team;
use gemm::Parallelism;
use std::mem::MaybeUninit;

/// A strided matrix: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        View { data, rs: cols, cs: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        View { data, rs: 1, cs: cols }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        fits(self.data.len(), self.rs, self.cs, rows, cols)
    }

    /// The same memory read as the transposed matrix.
    pub fn flipped(self) -> Self {
        View { data: self.data, rs: self.cs, cs: self.rs }
    }
}

/// A strided matrix that a multiply writes: element `(r, c)` is `data[r * rs + c * cs]`. Its
/// memory may be uninitialised (see [`filled`]) unless the multiply accumulates into it.
pub(crate) struct ViewMut<'a> {
    data: &'a mut [MaybeUninit<f32>],
    initialised: bool,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> ViewMut<'a> {
    /// A matrix in initialised memory.
    pub fn new(data: &'a mut [f32], rs: usize, cs: usize) -> Self {
        // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and a multiply only ever writes
        // initialised values through this view.
        let data = unsafe { &mut *(data as *mut [f32] as *mut [MaybeUninit<f32>]) };
        ViewMut { data, initialised: true, rs, cs }
    }

    /// A matrix in memory that may be uninitialised: a multiply must overwrite it.
    pub fn uninit(data: &'a mut [MaybeUninit<f32>], rs: usize, cs: usize) -> Self {
        ViewMut { data, initialised: false, rs, cs }
    }

    /// The same memory written as the transposed matrix.
    pub fn flipped(self) -> Self {
        ViewMut { rs: self.cs, cs: self.rs, ..self }
    }

    /// The destination as a pointer the parts of a product share (each writing its own blocks).
    pub(super) fn shared(self) -> Shared {
        Shared { data: team::Disjoint::new(self.data.as_mut_ptr() as *mut f32), rs: self.rs, cs: self.cs }
    }
}

/// A destination shared between the parts of a product (see [`ViewMut::shared`]).
#[derive(Clone, Copy)]
pub(super) struct Shared {
    data: team::Disjoint<f32>,
    rs: usize,
    cs: usize,
}

impl Shared {
    /// Where element `(r0, c0)` is and how many floats apart the rows are, when the rows are
    /// contiguous (a kernel may then write a block there itself).
    pub fn rows_at(self, r0: usize, c0: usize) -> Option<(*mut f32, usize)> {
        // `wrapping_add`: the caller only dereferences it for blocks inside the destination.
        (self.cs == 1).then(|| (self.data.get().wrapping_add(r0 * self.rs + c0), self.rs))
    }

    /// Writes (or adds, with `accumulate`) the `rows x cols` top-left corner of `block`, a
    /// row-major matrix of `ld` columns, at `(r0, c0)`.
    ///
    /// # Safety
    /// The corner lies inside the destination the view was made from, and no other thread
    /// reads or writes it meanwhile.
    pub unsafe fn write(
        self,
        (r0, c0): (usize, usize),
        (rows, cols): (usize, usize),
        block: &[f32],
        ld: usize,
        accumulate: bool,
    ) {
        for (i, line) in block.chunks(ld).take(rows).enumerate() {
            let at = self.data.get().add((r0 + i) * self.rs + c0 * self.cs);
            if self.cs == 1 {
                let dst = std::slice::from_raw_parts_mut(at as *mut MaybeUninit<f32>, cols);
                if accumulate {
                    dst.iter_mut().zip(line).for_each(|(d, v)| *d = MaybeUninit::new(d.assume_init() + v));
                } else {
                    dst.iter_mut().zip(line).for_each(|(d, v)| *d = MaybeUninit::new(*v));
                }
            } else {
                for (j, v) in line[..cols].iter().enumerate() {
                    let d = at.add(j * self.cs);
                    *d = if accumulate { *d + v } else { *v };
                }
            }
        }
    }
}

/// A vector of `len` floats written by `fill` without being zeroed first: `fill` gets the
/// memory and must write every element (for a product: hand it to one multiply that overwrites
/// all of it, `accumulate` false and a view covering all `len` elements; gemm writes zeros when
/// `k` is 0). Zeroing the gradients first would be one more pass over them.
pub(crate) fn filled(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote every element (its contract, kept by every caller).
    unsafe { v.set_len(len) };
    v
}

fn fits(len: usize, rs: usize, cs: usize, rows: usize, cols: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// Work (multiply-adds) above which a multiply is split between threads: below it, handing a
/// part to a team thread costs about what it gives back.
const PARALLEL_WORK: usize = 1 << 20;

/// `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] · rhs[k, n]`. Runs on every core from a
/// million multiply-adds (the notebook's 64x784x50 is above the line, its 64x50x10 below).
///
/// The layouts matter as much as the sizes: the AVX-512 kernels are several times faster when
/// `lhs` is contiguous along `k` and `rhs` along `n`, or the destination is column-major with
/// `lhs` contiguous along `m`, than when both operands are contiguous along `k` (the layout of
/// `x Wᵀ` on row-major data; docs/speed.md has the figures). [`super::layout`] picks its
/// layouts by that table.
pub(crate) fn matmul(m: usize, n: usize, k: usize, dst: ViewMut, accumulate: bool, lhs: View, rhs: View) {
    matmul_from(PARALLEL_WORK, (m, n, k), dst, accumulate, lhs, rhs)
}

/// [`matmul`], split between threads from `min_work` multiply-adds (a convolution's products
/// have a line of their own, `im2col.rs`'s `CONV_WORK`).
pub(crate) fn matmul_from(
    min_work: usize,
    (m, n, k): (usize, usize, usize),
    dst: ViewMut,
    accumulate: bool,
    lhs: View,
    rhs: View,
) {
    let parts = if m * n * k >= min_work { team::width() } else { 1 };
    product(super::bf16_products(), parts, (m, n, k), dst, accumulate, lhs, rhs)
}

/// [`matmul_from`] on the calling thread alone, in bf16 when `bf16` (the precision of the
/// thread that split the job: a part running on another of the team's threads cannot read it
/// there, see [`super::bf16_products`]).
pub(crate) fn matmul_alone(
    bf16: bool,
    mnk: (usize, usize, usize),
    dst: ViewMut,
    accumulate: bool,
    lhs: View,
    rhs: View,
) {
    product(bf16, 1, mnk, dst, accumulate, lhs, rhs)
}

/// The operands checked, then the product in at most `parts` blocks, in bf16 when `bf16`.
fn product(bf16: bool, parts: usize, mnk: (usize, usize, usize), dst: ViewMut, accumulate: bool, lhs: View, rhs: View) {
    let (m, n, k) = mnk;
    let ok = fits(dst.data.len(), dst.rs, dst.cs, m, n) && lhs.fits(m, k) && rhs.fits(k, n);
    assert!(ok, "matmul: operand too small");
    assert!(dst.initialised || !accumulate, "matmul: accumulating into uninitialised memory");
    if bf16 {
        return super::bf16::matmul(parts, mnk, dst, accumulate, lhs, rhs);
    }
    multiply(parts, mnk, dst, accumulate, lhs, rhs)
}

/// `dst = (accumulate ? dst : 0) + lhs · rhs` on the calling thread, in bf16 with the left
/// operand packed already (for products in hardware, [`super::bf16_packing`]); `dst` must have
/// contiguous rows.
pub(crate) fn matmul_packed(lhs: &mut super::bf16::PackedLhs, n: usize, dst: ViewMut, accumulate: bool, rhs: View) {
    let (m, k) = lhs.dims();
    assert!(dst.cs == 1 && fits(dst.data.len(), dst.rs, 1, m, n) && rhs.fits(k, n), "matmul: operand too small");
    assert!(dst.initialised || !accumulate, "matmul: accumulating into uninitialised memory");
    lhs.multiply(n, dst, accumulate, rhs)
}

/// [`matmul_from`] with a right operand already rounded to bf16 (`rhs`, `k x n`, its bits): for
/// bf16 products in hardware ([`super::bf16_packing`]), which pack their operands as bf16.
pub(crate) fn matmul_bf16_rhs(
    min_work: usize,
    (m, n, k): (usize, usize, usize),
    dst: ViewMut,
    accumulate: bool,
    lhs: View,
    rhs: super::bf16::View16,
) {
    let ok = fits(dst.data.len(), dst.rs, dst.cs, m, n) && lhs.fits(m, k) && fits(rhs.data.len(), rhs.rs, rhs.cs, k, n);
    assert!(ok, "matmul: operand too small");
    assert!(dst.initialised || !accumulate, "matmul: accumulating into uninitialised memory");
    let parts = if m * n * k >= min_work { team::width() } else { 1 };
    let (lhs, rhs) = (super::bf16::Source::F32(lhs), super::bf16::Source::Bf16(rhs.flipped()));
    super::bf16::matmul_sources(parts, (m, n, k), dst, accumulate, lhs, rhs)
}

/// [`matmul_from`] in at most `parts` blocks (see [`split`]), on the kernels' team.
pub(super) fn multiply(
    parts: usize,
    (m, n, k): (usize, usize, usize),
    dst: ViewMut,
    accumulate: bool,
    lhs: View,
    rhs: View,
) {
    let (by_rows, bounds) = split(m, n, parts);
    let out = team::Disjoint::new(dst.data.as_mut_ptr() as *mut f32);
    team::run(bounds.len() - 1, &|p| {
        let (from, to) = (bounds[p], bounds[p + 1]);
        let (rows, cols, at, l, r) = if by_rows {
            (to - from, n, from * dst.rs, from * lhs.rs, 0)
        } else {
            (m, to - from, from * dst.cs, 0, from * rhs.cs)
        };
        // SAFETY: the asserts above keep every index gemm reads or writes inside the three
        // slices, and a part's block starts inside them; the parts write disjoint blocks of
        // `dst`, a unique borrow, which aliases neither operand.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                out.get().add(at),
                dst.cs as isize,
                dst.rs as isize,
                accumulate,
                lhs.data.as_ptr().add(l),
                lhs.cs as isize,
                lhs.rs as isize,
                rhs.data.as_ptr().add(r),
                rhs.cs as isize,
                rhs.rs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            )
        }
    });
}

/// How an `m x n` product is cut into at most `parts` blocks that the `gemm` crate computes
/// exactly as it would the whole: whether by rows, and the blocks' boundaries along that side.
///
/// The crate's summation order depends on the shape it is given: below 65 rows and 65 columns it
/// blocks `k` by 512 (else evenly: 1500 is 512 + 512 + 476 one way, 3 x 500 the other), a
/// product of at most 256 elements takes other kernels, and one row or column a vector kernel.
/// So the whole is split only where it is outside all three, and every block keeps more than 64
/// rows or columns: each block then adds its elements up in the whole's order, whatever the
/// number of threads. Rows go by the kernels' 64-row panels, columns by 16.
fn split(m: usize, n: usize, parts: usize) -> (bool, Vec<usize>) {
    let by_rows = m / 64 >= parts || m >= n;
    let (whole, unit, other) = if by_rows { (m, 64, n) } else { (n, 16, m) };
    // Skinny products are not worth splitting (and a block of them could fall to 256 elements).
    if parts < 2 || (m <= 64 && n <= 64) || other <= 16 {
        return (true, vec![0, m]);
    }
    // A block of rows keeps all the columns: enough if they are more than 64; otherwise the
    // block itself needs 65 rows (two panels). Likewise for columns.
    let least = if other > 64 { 1 } else { 65usize.div_ceil(unit) };
    let units = whole / unit;
    let parts = parts.min(units / least).max(1);
    let mut bounds: Vec<usize> = (0..parts).map(|p| p * units / parts * unit).collect();
    bounds.push(whole);
    (by_rows, bounds)
}

/// `dst[c * ld + r] = src[r * cols + c]`: the transpose of a row-major `rows x cols` matrix, its
/// rows `ld >= rows` apart. Used on batches of activations (a few hundred kilobytes, just
/// written), never on weights: transposing a 3 MB weight each step costs more than a slow layout.
/// A large one is split between the kernel team by columns (rows of `dst`).
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], ld: usize) {
    transpose_from(0, src, rows, cols, dst, ld)
}

/// [`transpose`], on the caller alone below `least` elements (the convolution's rule).
pub(crate) fn transpose_from(least: usize, src: &[f32], rows: usize, cols: usize, dst: &mut [f32], ld: usize) {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and the transpose only writes
    // initialised values through it.
    let dst = unsafe { &mut *(dst as *mut [f32] as *mut [MaybeUninit<f32>]) };
    transpose_uninit(least, src, rows, cols, dst, ld)
}

/// The transpose of a row-major `rows x cols` matrix as a new row-major `cols x rows` one,
/// written once (no zeroing first), on the caller alone below `least` elements.
pub(crate) fn transposed(least: usize, src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    // Every element is written: the destination's rows are `rows` apart, `cols` of them.
    filled(rows * cols, |dst| transpose_uninit(least, src, rows, cols, dst, rows))
}

/// [`transpose_from`] into memory that may be uninitialised.
fn transpose_uninit(least: usize, src: &[f32], rows: usize, cols: usize, dst: &mut [MaybeUninit<f32>], ld: usize) {
    let fits = ld >= rows && (cols == 0 || dst.len() >= (cols - 1) * ld + rows);
    assert!(src.len() >= rows * cols && fits, "transpose: operand too small");
    let dst = &mut dst[..if cols == 0 { 0 } else { (cols - 1) * ld + rows }];
    super::team::rows_mut(least, dst, ld.max(1), rows, |first, part| {
        let n = if ld == 0 { 0 } else { part.len().div_ceil(ld) };
        transpose_part(&src[first.min(cols)..], rows, n.min(cols - first.min(cols)), cols, part, ld);
    });
}

/// `dst[c * ld + r] = src[r * stride + c]` for `rows x cols`.
fn transpose_part(src: &[f32], rows: usize, cols: usize, stride: usize, dst: &mut [MaybeUninit<f32>], ld: usize) {
    let fits =
        cols == 0 || rows == 0 || (src.len() > (rows - 1) * stride + cols - 1 && dst.len() >= (cols - 1) * ld + rows);
    assert!(fits, "transpose: operand too small");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked just above), and the assert keeps every 8x8 block
        // inside both slices.
        return unsafe { transpose_avx(src, rows, cols, stride, dst, ld) };
    }
    transpose_rest(src, rows, cols, stride, dst, ld, (0, 0));
}

/// The elements outside the top-left `done.0 x done.1` corner, one at a time.
fn transpose_rest(
    src: &[f32],
    rows: usize,
    cols: usize,
    stride: usize,
    dst: &mut [MaybeUninit<f32>],
    ld: usize,
    done: (usize, usize),
) {
    for r in 0..rows {
        for c in if r < done.0 { done.1 } else { 0 }..cols {
            dst[c * ld + r] = MaybeUninit::new(src[r * stride + c]);
        }
    }
}

/// 8x8 blocks through eight AVX registers (the usual unpack, shuffle and lane-permute network),
/// then the edges one at a time: several times faster than a scalar tiled loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_avx(src: &[f32], rows: usize, cols: usize, stride: usize, dst: &mut [MaybeUninit<f32>], ld: usize) {
    use std::arch::x86_64::*;
    let (full_rows, full_cols) = (rows / 8 * 8, cols / 8 * 8);
    for r0 in (0..full_rows).step_by(8) {
        for c0 in (0..full_cols).step_by(8) {
            let s = src.as_ptr().add(r0 * stride + c0);
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(s.add(i * stride)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let d = (dst.as_mut_ptr() as *mut f32).add(c0 * ld + r0);
            for (j, (a, b)) in [(s0, s4), (s1, s5), (s2, s6), (s3, s7)].into_iter().enumerate() {
                _mm256_storeu_ps(d.add(j * ld), _mm256_permute2f128_ps::<0x20>(a, b));
                _mm256_storeu_ps(d.add((j + 4) * ld), _mm256_permute2f128_ps::<0x31>(a, b));
            }
        }
    }
    transpose_rest(src, rows, cols, stride, dst, ld, (full_rows, full_cols));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_split_in_blocks_has_the_bits_of_the_whole() {
        // Shapes around the crate's thresholds (64 rows or columns, 512 along k, 256 elements)
        // and the layouts the layers use; k = 1500 sums differently when blocked by 512.
        let shapes =
            [(128, 64, 1500), (128, 1500, 64), (64, 1001, 1500), (333, 64, 1500), (17, 1001, 1500), (200, 130, 1500)];
        let shapes = shapes.into_iter().chain([
            (65, 70, 700),
            (1000, 17, 600),
            (64, 4000, 513),
            (300, 2, 2000),
            (64, 576, 3136),
        ]);
        let mut seed = 1u32;
        let mut random = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
                })
                .collect()
        };
        for (m, n, k) in shapes {
            let (a, b) = (random(m * k), random(k * n));
            // Row-major operands, the transposed left one a linear layer's weight gradient reads,
            // and a convolution's weight gradient: both operands along k, the destination
            // column-major.
            let layouts = [
                (View::rows(&a, k), View::rows(&b, n), false),
                (View::transposed(&a, m), View::rows(&b, n), false),
                (View::rows(&a, k), View::transposed(&b, k), true),
            ];
            for (layout, (lhs, rhs, column_major)) in layouts.into_iter().enumerate() {
                let run = |parts: usize| {
                    let mut out = vec![0f32; m * n];
                    let dst = if column_major { ViewMut::new(&mut out, 1, m) } else { ViewMut::new(&mut out, n, 1) };
                    multiply(parts, (m, n, k), dst, false, lhs, rhs);
                    out
                };
                let whole = run(1);
                for parts in 2..=8 {
                    assert!(run(parts) == whole, "{m}x{n}x{k} in {parts} blocks, layout {layout}");
                }
            }
        }
    }

    #[test]
    fn transpose_moves_every_element_once_for_any_shape() {
        // The last three are large enough to be split between threads (by runs of columns) when
        // there are two kernel threads or more, as on any machine of two cores or more.
        let shapes = [
            (1, 1),
            (8, 8),
            (3, 17),
            (16, 24),
            (64, 50),
            (13, 9),
            (9, 13),
            (0, 5),
            (5, 0),
            (128, 784),
            (131, 517),
            (200, 300),
        ];
        for ((rows, cols), pad) in shapes.into_iter().flat_map(|s| [(s, 0), (s, 3), (s, 16)]) {
            let ld = rows + pad;
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![-1f32; cols * ld];
            transpose(&src, rows, cols, &mut dst, ld);
            let mut want = vec![-1f32; cols * ld];
            for r in 0..rows {
                for c in 0..cols {
                    want[c * ld + r] = src[r * cols + c];
                }
            }
            assert_eq!(dst, want, "{rows}x{cols}, rows {ld} apart");
        }
    }
}
