//! The library's error type: one enum, with fields that name the file, the expected and the found value.

use std::path::PathBuf;

/// What can go wrong in minibatch. Every variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written (`path` is empty for an I/O error converted
    /// with `?` from code that named no file).
    #[error("{}", io_message(path, source))]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A path given as a file to read is a folder, a device, a FIFO or a socket.
    #[error("{}: not a regular file ({found})", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead (`a device`, `a FIFO`...).
        found: &'static str,
    },
    /// An IDX file is malformed; `problem` says how.
    #[error("{}: {problem}", path.display())]
    Idx {
        /// The IDX file.
        path: PathBuf,
        /// What is wrong with it.
        problem: IdxProblem,
    },
    /// None of the accepted names of a data file exists in the data folder.
    #[error("{}: no {what} file (looked for {})", dir.display(), tried.join(", "))]
    MissingFile {
        /// The folder searched.
        dir: PathBuf,
        /// The role of the file (`training images`, ...).
        what: &'static str,
        /// The file names tried.
        tried: Vec<String>,
    },
    /// A saved model does not fit the model it is loaded into.
    #[error("{}: tensor {name}: expected {expected}, found {found}", path.display())]
    StateMismatch {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name (`0.weight`).
        name: String,
        /// What the model has (a shape, or "present").
        expected: String,
        /// What the file has.
        found: String,
    },
    /// None of a weights file's tensors has the name and shape of a parameter of the model it is
    /// loaded into: the weights of another architecture.
    #[error("{}: none of its {file} tensors has the name and shape of a parameter of the model ({model} parameters): the weights of another architecture", path.display())]
    NothingInCommon {
        /// The weights file.
        path: PathBuf,
        /// Tensors in the file.
        file: usize,
        /// Parameters of the model.
        model: usize,
    },
    /// A weights file that cannot be read as safetensors.
    #[error("{}: not a safetensors file: {reason}", path.display())]
    BadStateFile {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// A file of one of minibatch's own formats (a checkpoint's `state.json`, a training log)
    /// that cannot be read as that format.
    #[error("{}: not a valid {format}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// The format expected (`checkpoint state (JSON)`, `training log (JSON lines)`).
        format: &'static str,
        /// What is wrong, with the line or field where there is one.
        reason: String,
    },
    /// A file's data, of a size its header gives, does not fit in the memory left.
    #[error("{}: out of memory: its {what} take {bytes} bytes, more than can be allocated", path.display())]
    OutOfMemory {
        /// The file.
        path: PathBuf,
        /// What was to be held (`pixels`).
        what: &'static str,
        /// The bytes asked for.
        bytes: u64,
    },
    /// A file holds the same data twice (raw and `.gz`, or under both spellings of its name) and
    /// the copies differ, so that neither can be trusted.
    #[error("{} and {} both hold the {what} but differ: remove the wrong one", first.display(), second.display())]
    DifferingCopies {
        /// One copy.
        first: PathBuf,
        /// The other.
        second: PathBuf,
        /// The role of the file (`training images`, ...).
        what: &'static str,
    },
    /// An input batch holds a NaN or an infinity, found when its loss came out non-finite.
    #[error("the input of training batch {batch} of epoch {epoch} holds a non-finite value (NaN or infinity)")]
    NonFiniteInput {
        /// The epoch, from 1.
        epoch: usize,
        /// The batch within the epoch, from 1.
        batch: usize,
    },
    /// A chart could not be drawn or written.
    #[error("{}: cannot draw the plot: {reason}", path.display())]
    Plot {
        /// The image file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A training callback could not do its job (write a log, a checkpoint...).
    #[error("{0}")]
    Callback(String),
    /// An argument is out of its valid range (a zero batch size, a negative learning rate...).
    #[error("invalid {name}: expected {expected}, found {found}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What would be valid.
        expected: String,
        /// What was given.
        found: String,
    },
    /// A layer was given an input of the wrong shape or element type.
    #[error("{layer} got input {found}: expected {expected}")]
    Shape {
        /// The layer as it prints (`Linear(in_features=2, out_features=64, bias=True)`).
        layer: String,
        /// What it takes (`2 features`, `F32, as its weight`).
        expected: String,
        /// The input's dimensions (`[8, 3]`), with its element type when that is what is wrong.
        found: String,
    },
    /// A dataset item could not be produced.
    #[error("item {index}: {source}")]
    Item {
        /// The index asked for.
        index: usize,
        /// Why it failed.
        source: Box<Error>,
    },
    /// An operation that this module does not have (ModuleList has no forward, as in PyTorch).
    #[error("{0}")]
    Unsupported(String),
    /// An error from candle's tensors (without the backtrace candle attaches to its errors when
    /// `RUST_BACKTRACE` is set: the message is for the user, not a crash report).
    #[error(transparent)]
    Tensor(candle_core::Error),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Tensor(without_backtrace(e))
    }
}

/// `e` with every backtrace candle captured taken out (its message and context kept).
fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => without_backtrace(*inner),
        E::Context { inner, context } => E::Context { inner: Box::new(without_backtrace(*inner)), context },
        E::WithPath { inner, path } => E::WithPath { inner: Box::new(without_backtrace(*inner)), path },
        e => e,
    }
}

/// An I/O error with no file to name (a user's own reading code, say); errors of minibatch's own
/// file handling name the file.
impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io { path: PathBuf::new(), source }
    }
}

/// How an IDX file is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdxProblem {
    /// The file (or its decompressed content) is empty.
    #[error("empty file")]
    Empty,
    /// The first four bytes are not `0 0 8 ndim`.
    #[error("bad magic number: expected {expected:#010x}, found {found:#010x}")]
    BadMagic {
        /// The magic number of an unsigned-byte IDX file of the expected rank.
        expected: u32,
        /// What the file starts with.
        found: u32,
    },
    /// The file ends before its header does.
    #[error("truncated header: expected {expected} bytes, found {found}")]
    TruncatedHeader {
        /// Header length.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The data length disagrees with the dimensions in the header.
    #[error("data length does not match dimensions {dims:?}: expected {expected} bytes, found {found}")]
    Length {
        /// The header's dimensions.
        dims: Vec<usize>,
        /// Bytes the dimensions call for.
        expected: u64,
        /// Bytes present (at least this many, when the file is longer).
        found: u64,
    },
    /// The header of a compressed file claims more data than it could hold.
    #[error("dimensions {dims:?} claim {claimed} bytes, more than a {file_len}-byte file can hold")]
    Implausible {
        /// The header's dimensions.
        dims: Vec<usize>,
        /// Bytes claimed.
        claimed: u64,
        /// The file's length on disk.
        file_len: u64,
    },
    /// A `.gz` file that is not valid gzip.
    #[error("not valid gzip: {0}")]
    Gzip(String),
    /// Images and labels disagree in count.
    #[error("{images} images but {labels} labels")]
    CountMismatch {
        /// Images in the image file.
        images: usize,
        /// Labels in the label file.
        labels: usize,
    },
    /// An image file whose header counts no images.
    #[error("holds no images (its header counts 0)")]
    NoImages,
    /// Images with no pixels: a zero row or column count.
    #[error("images of {rows}x{cols} pixels: an image needs at least one row and one column")]
    NoPixels {
        /// Rows of each image.
        rows: usize,
        /// Columns of each image.
        cols: usize,
    },
    /// Test images whose size differs from the training images'.
    #[error("images of {found:?} pixels, but the training images are {expected:?}")]
    ImageShape {
        /// The training images' rows and columns.
        expected: Vec<usize>,
        /// This file's.
        found: Vec<usize>,
    },
    /// A label outside `0..classes`.
    #[error("label {label} at index {index} is out of range: expected 0..{classes}")]
    LabelOutOfRange {
        /// Position of the label.
        index: usize,
        /// The label.
        label: u8,
        /// Number of classes allowed.
        classes: usize,
    },
    /// The labels leave most classes empty: likely a corrupted byte rather than a data set of that
    /// many classes (say how many there are to accept it).
    #[error(
        "the labels take {} distinct values ({}), which would make {classes} classes with most of them empty; \
         if there really are {classes} classes, say so (`classes`, or --classes {classes})",
        values.len(),
        list_values(values)
    )]
    SparseLabels {
        /// The distinct values found, ascending.
        values: Vec<u8>,
        /// The class count they imply (largest label + 1).
        classes: usize,
    },
    /// The validation split does not fit in the training file.
    #[error("validation size {valid} leaves no training images out of {total}")]
    Split {
        /// Requested validation size.
        valid: usize,
        /// Images in the training file.
        total: usize,
    },
}

fn io_message(path: &std::path::Path, source: &std::io::Error) -> String {
    if path.as_os_str().is_empty() {
        source.to_string()
    } else {
        format!("{}: {source}", path.display())
    }
}

/// `0-9, 200`: runs of consecutive values shortened.
fn list_values(values: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        parts.push(if j > i { format!("{}-{}", values[i], values[j]) } else { values[i].to_string() });
        i = j + 1;
    }
    parts.join(", ")
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An [`Error::InvalidArgument`] from anything printable.
    pub fn invalid(name: &'static str, expected: impl Into<String>, found: impl ToString) -> Self {
        Error::InvalidArgument { name, expected: expected.into(), found: found.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_errors_lose_their_backtraces_and_keep_their_context() {
        use candle_core::Error as E;
        let traced = |inner: E| E::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        let deep =
            E::Context { inner: Box::new(traced(E::Msg("shape mismatch".into()))), context: Box::new("in the loss") };
        assert!(traced(E::Msg("x".into())).to_string().len() > "x".len(), "the backtrace is in candle's message");
        assert_eq!(Error::from(traced(deep)).to_string(), "in the loss\nshape mismatch");
    }
}
