//! Running out of memory ends the program with one line and status 1, as the library's own
//! refusals do, rather than with Rust's abort (status 134). The program's allocator is the
//! system's; this wrapper only looks at a failed allocation.
//!
//! It cannot tell a fallible allocation (`try_reserve`) from another, so one that fails ends the
//! program too, with the same line. The program has no path that recovers from one: the
//! library's own `try_reserve` (an IDX file's values) serves its users under the plain system
//! allocator, where it becomes a typed error.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, which ends the process cleanly when it cannot allocate.
pub struct ExitWhenOutOfMemory;

// SAFETY: every method forwards to `System` with the same arguments, and a null result never
// returns to the caller (the process ends), so `System`'s contract is kept.
unsafe impl GlobalAlloc for ExitWhenOutOfMemory {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` contract is `System`'s.
        checked(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        checked(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's `ptr`, `layout` and `new_size` contract is `System`'s.
        checked(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`, as the caller promises.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn checked(ptr: *mut u8, size: usize) -> *mut u8 {
    if ptr.is_null() {
        out_of_memory(size);
    }
    ptr
}

/// Writes the message and exits with status 1, allocating nothing (the allocator just failed).
/// Checkpoints already written stay whole: the run ends as a killed one does.
fn out_of_memory(size: usize) -> ! {
    let mut line = [0u8; 200];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(line.len() - len);
        line[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"minibatch: error: out of memory (could not allocate ");
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = size;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    put(&digits[at..]);
    put(b" bytes): a smaller --bs, fewer --workers or a smaller file needs less\n");
    use std::io::Write;
    // Unbuffered, and it allocates nothing to write a byte slice.
    let _ = std::io::stderr().write_all(&line[..len]);
    // `_exit`, not `exit`: nothing may run that could allocate again.
    #[cfg(unix)]
    // SAFETY: `_exit` takes any status and does not return.
    unsafe {
        libc::_exit(1)
    }
    #[cfg(not(unix))]
    std::process::abort()
}
