//! Opening the files minibatch reads: regular files only. A device (`/dev/zero`), a FIFO or a
//! folder given where a file is expected would otherwise read for ever, block in `open`, or fail
//! with a message that does not say why.

use crate::error::{Error, Result};
use std::fs::File;
use std::path::Path;

/// What a path is, in words, when it is not a regular file.
fn kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file (links followed); an [`Error::NotAFile`]
/// naming what it is otherwise, checked before opening (opening a FIFO blocks).
pub(crate) fn open_regular(path: &Path) -> Result<File> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::NotAFile { path: path.to_path_buf(), found: kind(&meta) });
    }
    File::open(path).map_err(io)
}

/// The bytes of a regular file.
pub(crate) fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut open_regular(path)?, &mut bytes)
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    Ok(bytes)
}

/// The text of a regular file; bytes that are not UTF-8 are an [`Error::BadFile`] of `format`.
pub(crate) fn read_text(path: &Path, format: &'static str) -> Result<String> {
    String::from_utf8(read_regular(path)?).map_err(|e| Error::BadFile {
        path: path.to_path_buf(),
        format,
        reason: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_folders_are_refused_before_reading() {
        let err = read_regular(Path::new("/dev/zero")).unwrap_err().to_string();
        assert_eq!(err, "/dev/zero: not a regular file (a device)");
        let dir = std::env::temp_dir();
        assert!(read_regular(&dir).unwrap_err().to_string().ends_with("not a regular file (a folder)"));
        #[cfg(unix)]
        {
            let fifo = dir.join(format!("minibatch-fifo-{}", std::process::id()));
            let _ = std::fs::remove_file(&fifo);
            assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
            let err = read_regular(&fifo).unwrap_err().to_string();
            assert!(err.ends_with("not a regular file (a FIFO)"), "{err}");
            std::fs::remove_file(&fifo).unwrap();
        }
    }
}
