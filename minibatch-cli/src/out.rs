//! Standard output that never panics: `println!` panics when the output is closed (`minibatch
//! train | head -1`) or full (`> /dev/full`), which would end a run before it saved its weights.
//! Here the first failure is remembered, later writes are dropped, and `main` reports it once the
//! command has finished its work.

use std::io::{self, Write};
use std::sync::Mutex;

static FAILURE: Mutex<Option<io::Error>> = Mutex::new(None);

/// Standard output, remembering its first failure instead of panicking.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl Stdout {
    fn attempt(f: impl FnOnce(&mut io::StdoutLock) -> io::Result<()>) {
        let mut failure = FAILURE.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            if let Err(e) = f(&mut io::stdout().lock()) {
                *failure = Some(e);
            }
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Self::attempt(|out| out.write_all(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Self::attempt(|out| out.flush());
        Ok(())
    }
}

/// How standard output failed, if it did (after flushing what is left).
pub fn failure() -> Option<io::Error> {
    let _ = Stdout.flush();
    FAILURE.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// `println!` through [`Stdout`].
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!($crate::out::Stdout, $($arg)*);
    }};
}

/// `print!` through [`Stdout`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!($crate::out::Stdout, $($arg)*);
    }};
}

pub(crate) use {out, outln};
