//! Reading IDX files, the format of the MNIST database, raw or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number (`0`, `0`, a type code, the number of dimensions), one
//! big-endian `u32` per dimension, then the data. Only unsigned bytes (type `0x08`) are read here,
//! which is what MNIST and its look-alikes (Fashion-MNIST, KMNIST) use.

use crate::error::{Error, IdxProblem, Result};
use std::io::Read;
use std::path::Path;

/// The contents of an IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions from the header (`[60000, 28, 28]` for MNIST's training images).
    pub dims: Vec<usize>,
    /// The data, row-major, exactly `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// gzip can compress a run of zeros about 1032 to 1; a header that claims more than this many
/// bytes per byte of file is refused before anything is allocated.
const MAX_GZIP_RATIO: u64 = 1100;

/// Reads an IDX file of unsigned bytes with `ndim` dimensions. A file starting with the gzip magic
/// bytes is decompressed whatever its name. Every check (magic number, rank, data length) fails
/// with [`Error::Idx`] naming the file, before any allocation larger than the file justifies.
pub fn read_idx(path: &Path, ndim: u8) -> Result<Idx> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let file = crate::files::open_regular(path)?;
    let file_len = file.metadata().map_err(io)?.len();
    read_idx_from(std::io::BufReader::new(file), file_len, path, ndim)
}

/// [`read_idx`] on bytes in memory (`name` names them in errors): what the fuzzer drives.
pub fn parse_idx(bytes: &[u8], ndim: u8, name: &Path) -> Result<Idx> {
    read_idx_from(bytes, bytes.len() as u64, name, ndim)
}

fn read_idx_from(mut file: impl Read, file_len: u64, path: &Path, ndim: u8) -> Result<Idx> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let bad = |problem| Error::Idx { path: path.to_path_buf(), problem };
    let mut head = [0u8; 2];
    let n = read_full(&mut file, &mut head).map_err(io)?;
    let gz = n == 2 && head == [0x1f, 0x8b];
    let prefix = std::io::Cursor::new(head[..n].to_vec());
    let mut reader: Box<dyn Read> =
        if gz { Box::new(flate2::read::GzDecoder::new(prefix.chain(file))) } else { Box::new(prefix.chain(file)) };
    let read_err = |e: std::io::Error| {
        if gz && e.kind() != std::io::ErrorKind::PermissionDenied {
            bad(IdxProblem::Gzip(e.to_string()))
        } else {
            io(e)
        }
    };
    let header_len = 4 + 4 * ndim as usize;
    let mut header = vec![0u8; header_len];
    let got = read_full(&mut reader, &mut header[..4]).map_err(read_err)?;
    if got == 0 {
        return Err(bad(IdxProblem::Empty));
    }
    if got < 4 {
        return Err(bad(IdxProblem::TruncatedHeader { expected: header_len, found: got }));
    }
    let expected_magic = 0x0800 | ndim as u32;
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if magic != expected_magic {
        return Err(bad(IdxProblem::BadMagic { expected: expected_magic, found: magic }));
    }
    let got = 4 + read_full(&mut reader, &mut header[4..]).map_err(read_err)?;
    if got < header_len {
        return Err(bad(IdxProblem::TruncatedHeader { expected: header_len, found: got }));
    }
    let dims: Vec<usize> =
        header[4..].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let claimed = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64)).unwrap_or(u64::MAX);
    if !gz && claimed != file_len - header_len as u64 {
        // A raw file's length tells its data length before anything is read.
        return Err(bad(IdxProblem::Length { dims, expected: claimed, found: file_len - header_len as u64 }));
    }
    if gz && claimed > file_len.saturating_mul(MAX_GZIP_RATIO) {
        return Err(bad(IdxProblem::Implausible { dims, claimed, file_len }));
    }
    // Room for the one byte past the end that tells a file too long, so the buffer never grows.
    let mut data = Vec::new();
    let bytes = claimed.saturating_add(1);
    usize::try_from(bytes).ok().and_then(|n| data.try_reserve_exact(n).ok()).ok_or_else(|| Error::OutOfMemory {
        path: path.to_path_buf(),
        what: "values",
        bytes: claimed,
    })?;
    // One byte more than claimed tells a file that is too long.
    reader.take(claimed + 1).read_to_end(&mut data).map_err(read_err)?;
    if data.len() as u64 != claimed {
        let found = data.len() as u64;
        return Err(bad(IdxProblem::Length { dims, expected: claimed, found }));
    }
    Ok(Idx { dims, data })
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("minibatch-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn problem(r: Result<Idx>) -> IdxProblem {
        match r {
            Err(Error::Idx { problem, .. }) => problem,
            other => panic!("expected an IDX error, got {other:?}"),
        }
    }

    #[test]
    fn reads_raw_and_gzip() {
        let bytes = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let raw = read_idx(&write("raw", &bytes), 2).unwrap();
        assert_eq!(raw, Idx { dims: vec![2, 3], data: vec![1, 2, 3, 4, 5, 6] });
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, &bytes).unwrap();
        let gz = read_idx(&write("gz.gz", &enc.finish().unwrap()), 2).unwrap();
        assert_eq!(gz, raw);
    }

    #[test]
    fn each_defect_is_named() {
        let ok = idx_bytes(&[2, 3], &[0; 6]);
        assert_eq!(problem(read_idx(&write("empty", &[]), 2)), IdxProblem::Empty);
        assert_eq!(problem(read_idx(&write("magic", &ok), 1)), IdxProblem::BadMagic { expected: 0x801, found: 0x802 });
        assert_eq!(
            problem(read_idx(&write("head", &ok[..6]), 2)),
            IdxProblem::TruncatedHeader { expected: 12, found: 6 }
        );
        assert_eq!(
            problem(read_idx(&write("short", &ok[..15]), 2)),
            IdxProblem::Length { dims: vec![2, 3], expected: 6, found: 3 }
        );
        let mut long = ok.clone();
        long.push(9);
        assert_eq!(
            problem(read_idx(&write("long", &long), 2)),
            IdxProblem::Length { dims: vec![2, 3], expected: 6, found: 7 }
        );
        // A header claiming 2^32 images is refused before anything that size is allocated:
        // from the length of a raw file, and from the most gzip could expand a small one to.
        let huge = idx_bytes(&[u32::MAX, 28, 28], &[0; 10]);
        let expected = u32::MAX as u64 * 784;
        assert_eq!(
            problem(read_idx(&write("huge", &huge), 3)),
            IdxProblem::Length { dims: vec![u32::MAX as usize, 28, 28], expected, found: 10 }
        );
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, &huge).unwrap();
        let gz = enc.finish().unwrap();
        assert!(
            matches!(problem(read_idx(&write("huge.gz", &gz), 3)), IdxProblem::Implausible { claimed, .. } if claimed == expected)
        );
        assert!(matches!(problem(read_idx(&write("badgz", &[0x1f, 0x8b, 1, 2, 3]), 2)), IdxProblem::Gzip(_)));
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = read_idx(Path::new("/nonexistent/file-idx1-ubyte"), 1).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/file-idx1-ubyte"));
    }
}
