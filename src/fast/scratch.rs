//! Scratch buffers reused from step to step: a convolution's patch matrix and its gradients are
//! megabytes each, and allocating them afresh every step makes the allocator map, fault in and
//! zero new pages.

use std::cell::RefCell;

/// Most buffers a thread keeps.
const KEPT: usize = 8;

thread_local! {
    static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    /// For each buffer handed out, its address and how many of its floats were ever written: a
    /// buffer given back is restored to that length, so that taking it again at a larger length
    /// does not zero what is already initialised.
    static WRITTEN: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `len` floats whose contents are left from an earlier use (zeros when new): for
/// output that is written completely before it is read.
pub(crate) fn take(len: usize) -> Vec<f32> {
    let reused = FREE.with(|f| {
        let mut free = f.borrow_mut();
        // The smallest kept buffer that is large enough.
        let best = free.iter().enumerate().filter(|(_, v)| v.capacity() >= len).min_by_key(|(_, v)| v.capacity());
        best.map(|(i, _)| i).map(|i| free.swap_remove(i))
    });
    let mut v = reused.unwrap_or_default();
    let written = v.len().max(len);
    v.resize(written, 0.0);
    v.truncate(len);
    let at = v.as_ptr() as usize;
    WRITTEN.with(|w| {
        let mut w = w.borrow_mut();
        // A buffer taken and then dropped rather than given back (a step whose backward never
        // ran) leaves its entry; a later allocation at its address must not inherit it.
        w.retain(|&(p, _)| p != at);
        if w.len() >= 4 * KEPT {
            w.remove(0);
        }
        w.push((at, written));
    });
    v
}

/// Hands a buffer back for a later [`take`]; beyond [`KEPT`] buffers the smallest is freed.
pub(crate) fn give(mut v: Vec<f32>) {
    let at = v.as_ptr() as usize;
    let written = WRITTEN.with(|w| {
        let mut w = w.borrow_mut();
        w.iter().position(|&(p, _)| p == at).map(|i| w.swap_remove(i).1)
    });
    if let Some(n) = written.filter(|&n| n <= v.capacity() && n > v.len()) {
        // SAFETY: the first `n` floats of this allocation were written when it was last taken
        // (`take` resized it to `n`), and nothing has shrunk the allocation since.
        unsafe { v.set_len(n) };
    }
    if v.capacity() == 0 {
        return;
    }
    FREE.with(|f| {
        let mut free = f.borrow_mut();
        free.push(v);
        if free.len() > KEPT {
            let smallest = free.iter().enumerate().min_by_key(|(_, v)| v.capacity()).map(|(i, _)| i);
            if let Some(i) = smallest {
                free.swap_remove(i);
            }
        }
    });
}

/// A scratch buffer of `len` bf16 values (their bits), two to each float of a [`take`] buffer.
pub(crate) struct Halves {
    buf: Vec<f32>,
    len: usize,
}

impl Halves {
    /// Room for `len` values, left from an earlier use.
    pub fn take(len: usize) -> Halves {
        Halves { buf: take(len.div_ceil(2)), len }
    }

    /// The values.
    pub fn bits(&self) -> &[u16] {
        // SAFETY: `buf` holds `len.div_ceil(2)` initialised floats, `2 * that >= len` u16 of
        // the same bytes; u16's alignment divides f32's.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr() as *const u16, self.len) }
    }

    /// The values, to write.
    pub fn bits_mut(&mut self) -> &mut [u16] {
        // SAFETY: as in `bits`, through the unique borrow of `buf`.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_mut_ptr() as *mut u16, self.len) }
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Its memory, back for a later [`take`].
    pub fn give(self) {
        give(self.buf)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_given_buffer_is_taken_again_at_any_smaller_length() {
        let v = super::take(1000);
        let at = v.as_ptr();
        super::give(v);
        let again = super::take(600);
        assert_eq!((again.as_ptr(), again.len()), (at, 600));
        super::give(again);
        let whole = super::take(1000);
        assert_eq!((whole.as_ptr(), whole.len()), (at, 1000), "back to its written length");
        super::give(whole);
    }
}
