//! Paths in the checkpoint's settings: a UTF-8 path as a string, any other (a Unix file name is
//! any bytes) as `{"bytes": [...]}`, so that a run on a folder with a non-UTF-8 name checkpoints
//! and resumes like any other.

/// `serde(with)` for `Option<PathBuf>`.
pub mod optional {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::path::PathBuf;

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Text(String),
        Bytes { bytes: Vec<u8> },
    }

    pub fn serialize<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        let stored = path.as_ref().map(|p| match p.to_str() {
            Some(text) => Stored::Text(text.to_string()),
            None => Stored::Bytes { bytes: bytes_of(p) },
        });
        stored.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        Ok(Option::<Stored>::deserialize(d)?.map(|stored| match stored {
            Stored::Text(text) => PathBuf::from(text),
            Stored::Bytes { bytes } => path_of(bytes),
        }))
    }

    #[cfg(unix)]
    fn bytes_of(p: &std::path::Path) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        p.as_os_str().as_bytes().to_vec()
    }

    #[cfg(unix)]
    fn path_of(bytes: Vec<u8>) -> PathBuf {
        use std::os::unix::ffi::OsStringExt;
        PathBuf::from(std::ffi::OsString::from_vec(bytes))
    }

    #[cfg(not(unix))]
    fn bytes_of(p: &std::path::Path) -> Vec<u8> {
        p.to_string_lossy().into_owned().into_bytes()
    }

    #[cfg(not(unix))]
    fn path_of(bytes: Vec<u8>) -> PathBuf {
        PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}
