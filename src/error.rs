//! The library's error type. User mistakes (bad scenario key, missing or corrupt file, impossible
//! configuration) map to exit code 2; internal failures to exit code 1.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad command-line argument or an impossible request.
    #[error("{0}")]
    Usage(String),
    /// A file's content is wrong: names the file and what is wrong with it.
    #[error("{}: {msg}", path.display())]
    Input { path: PathBuf, msg: String },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Training diverged (NaN or infinite loss): the run is recorded as failed with this reason.
    #[error("training diverged: {0}")]
    TrainingDiverged(String),
    /// The user pressed Ctrl-C (SIGINT); the run stopped before writing any result.
    #[error("interrupted (SIGINT): stopped before writing results")]
    Interrupted,
    /// Something the program itself got wrong.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn input(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
    /// Exit code of the binary: 2 for what the user can fix, 130 after Ctrl-C, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Internal(_) => 1,
            Error::Interrupted => INTERRUPTED,
            _ => 2,
        }
    }
}

/// Exit status of a process stopped by SIGINT (128 + 2), as shells report it.
pub const INTERRUPTED: i32 = 130;

pub type Result<T> = std::result::Result<T, Error>;
