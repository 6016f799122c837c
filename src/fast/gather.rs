//! Reads and adds through tables of offsets (a convolution's windows, `im2col.rs`), sixteen
//! lanes at a time where the processor has AVX-512 (`vgatherdps`, `vscatterdps`): a third less
//! time than one float at a time for unfolding the lesson's CNN, its layers' strides 2 leaving
//! no contiguous runs to copy.

/// `dst[i] = from[at[i]]`.
///
/// # Safety
/// Every `at[i]` is an index of `from`, and `dst` is as long as `at`.
pub(super) unsafe fn gather(from: &[f32], at: &[u32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && from.len() <= i32::MAX as usize {
        // SAFETY: the processor has AVX-512 (checked); the offsets are the caller's, and fit an
        // i32 since they index `from`.
        return gather_avx512(from, at, dst);
    }
    dst.iter_mut().zip(at).for_each(|(d, &a)| *d = *from.get_unchecked(a as usize));
}

/// `dst[i]` = the bf16 bits of `from[at[i]]`, rounded as the bf16 products round their operands.
///
/// # Safety
/// As [`gather`]'s.
pub(super) unsafe fn gather_bf16(from: &[f32], at: &[u32], dst: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if super::bf16_in_hardware()
        && std::arch::is_x86_feature_detected!("avx512bf16")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && from.len() <= i32::MAX as usize
    {
        // SAFETY: the processor has AVX512-BF16 and VL (checked); the offsets are the caller's,
        // and fit an i32.
        return gather_bf16_avx512(from, at, dst);
    }
    dst.iter_mut().zip(at).for_each(|(d, &a)| *d = crate::precision::bf16_bits(*from.get_unchecked(a as usize)));
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
