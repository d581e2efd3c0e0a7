//! One error type for everything a user can get wrong or a device can refuse. `main` prints it and
//! exits non-zero; nothing on these paths panics.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Missing or corrupt data files.
    Data(String),
    /// Flags that cannot work together or values out of range.
    Usage(String),
    /// No adapter, a device error, a shader that failed to build.
    Gpu(String),
    /// A checkpoint that is unreadable or does not fit the model asked for.
    Checkpoint(String),
    /// The loss became NaN or infinite.
    Diverged(String),
    Io(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Data(m) => write!(f, "data error: {m}"),
            Error::Usage(m) => write!(f, "invalid arguments: {m}"),
            Error::Gpu(m) => write!(f, "GPU error: {m}"),
            Error::Checkpoint(m) => write!(f, "checkpoint error: {m}"),
            Error::Diverged(m) => write!(f, "training diverged: {m}"),
            Error::Io(m) => write!(f, "I/O error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::data::DataError> for Error {
    fn from(e: crate::data::DataError) -> Self {
        Error::Data(e.to_string())
    }
}

/// Attaches the path to an I/O error so the user knows which file failed.
pub fn io_err(path: &std::path::Path, e: std::io::Error) -> Error {
    Error::Io(format!("{}: {e}", path.display()))
}
