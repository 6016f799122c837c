//! Whether a layer's buffer can be held. Sizes that come from a user (a kernel, a padding, an
//! output size, channels) are checked here before the layer allocates, so that an absurd size is
//! an error rather than an arithmetic overflow, a panic or the process aborting on a failed
//! allocation (PyTorch raises an error there too).

/// Bytes from which a buffer is first reserved and released, to see that it can be had: a
/// reservation is not written, so it costs no page, but below this size it is not worth a call.
const PROBED: usize = 1 << 30;

/// Whether `dims` elements of `elem_bytes` bytes each can be held: their size computed without
/// overflow, at most `isize::MAX` bytes, and from a gigabyte, granted by the allocator now.
pub(crate) fn can_hold(dims: &[usize], elem_bytes: usize) -> bool {
    let Some(bytes) = dims.iter().try_fold(elem_bytes, |n, &d| n.checked_mul(d)) else {
        return false;
    };
    bytes <= isize::MAX as usize && (bytes < PROBED || Vec::<u8>::new().try_reserve_exact(bytes).is_ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_that_overflow_or_cannot_be_had_are_refused() {
        assert!(super::can_hold(&[64, 3, 28, 28], 4));
        assert!(super::can_hold(&[0, usize::MAX], 4), "no elements");
        assert!(!super::can_hold(&[1 << 32, 1 << 32], 4), "overflows");
        assert!(!super::can_hold(&[1 << 31, 1 << 31], 4), "past isize::MAX bytes");
        assert!(!super::can_hold(&[1 << 20, 1 << 27], 4), "512 TB, more than any allocator grants");
    }
}
