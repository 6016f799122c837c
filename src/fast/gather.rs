//! Reads through tables of offsets (a convolution's windows, `im2col.rs`), each offset the start
//! of a run of `run` consecutive floats: a stride-1 window row is one run, a stride-2 one is
//! `run == 1`, single floats; and adds through them (`fold.rs`, strides above 1). Where the
//! processor has AVX-512, single floats go sixteen lanes at a time (`vgatherdps`, `vscatterdps`:
//! a third less time than one float at a time for unfolding the lesson's CNN, whose strides 2
//! leave no runs), and runs as plain loads and stores (a gather costs several times as much a
//! float on AMD Zen 4, and on 3x3 convolutions of stride 1 every window row is a run).

/// `dst[i * run + j] = from[at[i] + j]` for `j < run`.
///
/// # Safety
/// Every `at[i] + run - 1` is an index of `from`, `run >= 1`, and `dst` is `run` times as long
/// as `at`.
pub(super) unsafe fn gather(from: &[f32], at: &[u32], run: usize, dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && from.len() <= i32::MAX as usize {
        // SAFETY: the processor has AVX-512 (checked); the offsets are the caller's, and fit an
        // i32 since they index `from`.
        return match run {
            1 => gather_avx512(from, at, dst),
            _ => copy_runs_avx512(from, at, run, dst),
        };
    }
    for (&a, dst) in at.iter().zip(dst.chunks_exact_mut(run)) {
        dst.copy_from_slice(from.get_unchecked(a as usize..a as usize + run));
    }
}

/// [`gather`], each float as the bits of its bf16 rounding (the products' own rounding).
///
/// # Safety
/// As [`gather`]'s.
pub(super) unsafe fn gather_bf16(from: &[f32], at: &[u32], run: usize, dst: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if super::bf16_in_hardware()
        && std::arch::is_x86_feature_detected!("avx512bf16")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && from.len() <= i32::MAX as usize
    {
        // SAFETY: the processor has AVX512-BF16 and VL (checked); the offsets are the caller's,
        // and fit an i32.
        return match run {
            1 => gather_bf16_avx512(from, at, dst),
            _ => copy_runs_bf16_avx512(from, at, run, dst),
        };
    }
    for (&a, dst) in at.iter().zip(dst.chunks_exact_mut(run)) {
        let src = from.get_unchecked(a as usize..a as usize + run);
        dst.iter_mut().zip(src).for_each(|(d, &x)| *d = crate::precision::bf16_bits(x));
    }
}

/// `to[at[i]] += src[i]`.
///
/// # Safety
/// Every `at[i]` is an index of `to`, no two of any sixteen neighbours are the same (one kernel
/// tap's windows are distinct), and `src` is as long as `at`. Every float then gets its adds in
/// the order of `at`, in lanes as one at a time.
pub(super) unsafe fn scatter_add(src: &[f32], at: &[u32], to: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && to.len() <= i32::MAX as usize {
        // SAFETY: the processor has AVX-512 (checked); the offsets are the caller's.
        return scatter_add_avx512(src, at, to);
    }
    src.iter().zip(at).for_each(|(g, &a)| *to.get_unchecked_mut(a as usize) += g);
}

/// The lanes of a run of `len` (at most 16) offsets.
#[cfg(target_arch = "x86_64")]
fn lanes(len: usize) -> u16 {
    if len >= 16 {
        u16::MAX
    } else {
        (1u16 << len) - 1
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gather_avx512(from: &[f32], at: &[u32], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    for (at, dst) in at.chunks(16).zip(dst.chunks_mut(16)) {
        let mask = lanes(at.len());
        let index = _mm512_maskz_loadu_epi32(mask, at.as_ptr() as *const i32);
        let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, index, from.as_ptr());
        _mm512_mask_storeu_ps(dst.as_mut_ptr(), mask, v);
    }
}

/// Copies each run sixteen floats at a time. A run's last sixteen are read and written whole
/// where both slices allow, the lanes past the run then written over by the next run: the
/// stores of masked ones cost more than the extra floats on AMD Zen 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_runs_avx512(from: &[f32], at: &[u32], run: usize, dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let (src, out, ends) = (from.as_ptr(), dst.as_mut_ptr(), (from.len(), dst.len()));
    for (i, &a) in at.iter().enumerate() {
        let (a, o) = (a as usize, i * run);
        runs_of(run, a, o, ends, |j, m| match m {
            None => _mm512_storeu_ps(out.add(o + j), _mm512_loadu_ps(src.add(a + j))),
            Some(m) => _mm512_mask_storeu_ps(out.add(o + j), m, _mm512_maskz_loadu_ps(m, src.add(a + j))),
        });
    }
}

/// Calls `f(j, mask)` for the sixteen-float pieces of a run of `run` floats read from `a` and
/// written at `o`: `None` for sixteen whole floats (every piece but the last, and the last where
/// sixteen fit before both `ends`), else the lanes of the run.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn runs_of(run: usize, a: usize, o: usize, (from, to): (usize, usize), mut f: impl FnMut(usize, Option<u16>)) {
    let mut j = 0;
    while run - j > 16 {
        f(j, None);
        j += 16;
    }
    let whole = a + j + 16 <= from && o + j + 16 <= to;
    f(j, if whole { None } else { Some(lanes(run - j)) });
}

/// [`gather_avx512`], each sixteen rounded to bf16 by `vcvtneps2bf16` (to nearest even,
/// subnormals flushed: the packing's own conversion).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512vl,avx512bw")]
unsafe fn gather_bf16_avx512(from: &[f32], at: &[u32], dst: &mut [u16]) {
    use std::arch::x86_64::*;
    for (at, dst) in at.chunks(16).zip(dst.chunks_mut(16)) {
        let mask = lanes(at.len());
        let index = _mm512_maskz_loadu_epi32(mask, at.as_ptr() as *const i32);
        let v = _mm512_cvtneps_pbh(_mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, index, from.as_ptr()));
        _mm256_mask_storeu_epi16(dst.as_mut_ptr() as *mut i16, mask, std::mem::transmute::<__m256bh, __m256i>(v));
    }
}

/// [`copy_runs_avx512`] rounded to bf16 as [`gather_bf16_avx512`] rounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512vl,avx512bw")]
unsafe fn copy_runs_bf16_avx512(from: &[f32], at: &[u32], run: usize, dst: &mut [u16]) {
    use std::arch::x86_64::*;
    let (src, out, ends) = (from.as_ptr(), dst.as_mut_ptr() as *mut i16, (from.len(), dst.len()));
    let half = |v: __m256bh| std::mem::transmute::<__m256bh, __m256i>(v);
    for (i, &a) in at.iter().enumerate() {
        let (a, o) = (a as usize, i * run);
        runs_of(run, a, o, ends, |j, m| match m {
            None => _mm256_storeu_si256(
                out.add(o + j) as *mut __m256i,
                half(_mm512_cvtneps_pbh(_mm512_loadu_ps(src.add(a + j)))),
            ),
            Some(m) => _mm256_mask_storeu_epi16(
                out.add(o + j),
                m,
                half(_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src.add(a + j)))),
            ),
        });
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scatter_add_avx512(src: &[f32], at: &[u32], to: &mut [f32]) {
    use std::arch::x86_64::*;
    for (src, at) in src.chunks(16).zip(at.chunks(16)) {
        let mask = lanes(at.len());
        let index = _mm512_maskz_loadu_epi32(mask, at.as_ptr() as *const i32);
        let sum = _mm512_add_ps(
            _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, index, to.as_ptr()),
            _mm512_maskz_loadu_ps(mask, src.as_ptr()),
        );
        _mm512_mask_i32scatter_ps::<4>(to.as_mut_ptr(), mask, index, sum);
    }
}
