//! Reads through tables of offsets (a convolution's windows, `im2col.rs`): each offset the start
//! of a run of `run` floats `step` apart (a window row of stride 1 or 2), or with `run == 1`
//! single floats (other strides). Where the processor has AVX-512, runs go sixteen floats at a
//! time as plain loads and stores (with stride 2 two loads and a permute that keeps every other
//! float), and single floats as `vgatherdps`: a gather costs several times as much a float on AMD
//! Zen 4 (unfolding took a fifth of the lesson's CNN's epoch there), and on 3x3 convolutions
//! every window row is a run.

/// `dst[i * run + j] = from[at[i] + j * step]` for `j < run`.
///
/// # Safety
/// Every `at[i] + (run - 1) * step` is an index of `from`, `run >= 1`, `step` is 1 or 2, and
/// `dst` is `run` times as long as `at`.
pub(super) unsafe fn gather(from: &[f32], at: &[u32], (run, step): (usize, usize), dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && from.len() <= i32::MAX as usize {
        // SAFETY: the processor has AVX-512 (checked); the offsets are the caller's, and fit an
        // i32 since they index `from`.
        return match run {
            1 => gather_avx512(from, at, dst),
            _ => copy_runs_avx512(from, at, (run, step), dst),
        };
    }
    for (&a, dst) in at.iter().zip(dst.chunks_exact_mut(run)) {
        dst.iter_mut().enumerate().for_each(|(j, d)| *d = *from.get_unchecked(a as usize + j * step));
    }
}

/// [`gather`], each float as the bits of its bf16 rounding (the products' own rounding).
///
/// # Safety
/// As [`gather`]'s.
pub(super) unsafe fn gather_bf16(from: &[f32], at: &[u32], (run, step): (usize, usize), dst: &mut [u16]) {
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
            _ => copy_runs_bf16_avx512(from, at, (run, step), dst),
        };
    }
    for (&a, dst) in at.iter().zip(dst.chunks_exact_mut(run)) {
        let at = |j: usize| *from.get_unchecked(a as usize + j * step);
        dst.iter_mut().enumerate().for_each(|(j, d)| *d = crate::precision::bf16_bits(at(j)));
    }
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

/// Sixteen floats of a run, `step` apart from `src`, in lanes: one load, or two and a permute
/// that keeps every other float. Loads reach past the run (to `step * 16` floats) where `room`
/// allows, else only its `len` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sixteen(src: *const f32, step: usize, len: usize, room: bool) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    if step == 1 {
        return if room { _mm512_loadu_ps(src) } else { _mm512_maskz_loadu_ps(lanes(len), src) };
    }
    let (lo, hi) = if room {
        (_mm512_loadu_ps(src), _mm512_loadu_ps(src.add(16)))
    } else {
        let reach = 2 * len - 1;
        (_mm512_maskz_loadu_ps(lanes(reach), src), _mm512_maskz_loadu_ps(lanes(reach.saturating_sub(16)), src.add(16)))
    };
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    _mm512_permutex2var_ps(lo, even, hi)
}

/// Calls `put(j, v, mask)` for each sixteen floats of run `i` (from offset `a`) of a table whose
/// runs are written one after another: `mask` `None` stores all sixteen lanes, which every
/// piece but a run's last does, and its last too where the lanes past the run land inside `dst`
/// (the next run writes over them: masked stores cost more on AMD Zen 4).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn each_sixteen(
    (a, i): (usize, usize),
    (run, step): (usize, usize),
    (from, dst): (&[f32], usize),
    mut put: impl FnMut(usize, std::arch::x86_64::__m512, Option<u16>),
) {
    let o = i * run;
    let mut j = 0;
    loop {
        let len = (run - j).min(16);
        let room = a + (j + 16) * step <= from.len();
        let v = sixteen(from.as_ptr().add(a + j * step), step, len, room);
        let whole = len == 16 || o + j + 16 <= dst;
        put(j, v, if whole { None } else { Some(lanes(len)) });
        j += 16;
        if j >= run {
            break;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_runs_avx512(from: &[f32], at: &[u32], runs: (usize, usize), dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let (out, len) = (dst.as_mut_ptr(), dst.len());
    for (i, &a) in at.iter().enumerate() {
        let o = i * runs.0;
        each_sixteen((a as usize, i), runs, (from, len), |j, v, mask| match mask {
            None => _mm512_storeu_ps(out.add(o + j), v),
            Some(m) => _mm512_mask_storeu_ps(out.add(o + j), m, v),
        });
    }
}

/// [`copy_runs_avx512`] rounded to bf16 as [`gather_bf16_avx512`] rounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512vl,avx512bw")]
unsafe fn copy_runs_bf16_avx512(from: &[f32], at: &[u32], runs: (usize, usize), dst: &mut [u16]) {
    use std::arch::x86_64::*;
    let (out, len) = (dst.as_mut_ptr() as *mut i16, dst.len());
    for (i, &a) in at.iter().enumerate() {
        let o = i * runs.0;
        each_sixteen((a as usize, i), runs, (from, len), |j, v, mask| {
            let v = std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v));
            match mask {
                None => _mm256_storeu_si256(out.add(o + j) as *mut __m256i, v),
                Some(m) => _mm256_mask_storeu_epi16(out.add(o + j), m, v),
            }
        });
    }
}
