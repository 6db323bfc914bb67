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
    /// A user error that names no file itself (a bad value, an impossible request), with where it
    /// arose: a key, a data set, a run of a study.
    #[error("{context}: {source}")]
    Context { context: String, source: Box<Error> },
    /// A user error that names no file itself, in the file `path`.
    #[error("{}: {source}", path.display())]
    InFile { path: PathBuf, source: Box<Error> },
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

/// The plotting and statistics crates' errors keep their kind (and so their exit code).
impl From<tunnelbench_plot::Error> for Error {
    fn from(e: tunnelbench_plot::Error) -> Self {
        use tunnelbench_plot::Error as E;
        match e {
            E::Usage(msg) => Error::Usage(msg),
            E::Input { path, msg } => Error::Input { path, msg },
            E::Io { path, source } => Error::Io { path, source },
            E::Internal(msg) => Error::Internal(msg),
        }
    }
}

impl Error {
    pub fn input(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        tunnelbench_plot::Error::input(path, msg).into()
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        tunnelbench_plot::Error::io(path, source).into()
    }
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
    /// `wrap(self)` if this error names no file yet; any other error passes unchanged.
    fn wrap_unlocated(self, wrap: impl FnOnce(Box<Error>) -> Error) -> Self {
        match self {
            Error::Usage(_) | Error::Context { .. } => wrap(Box::new(self)),
            located => located,
        }
    }
    /// This error with where it arose (`key `probe.main``, `study run 3 (...)`), if it names no file;
    /// any other error passes unchanged.
    pub fn context(self, context: impl Into<String>) -> Self {
        self.wrap_unlocated(|source| Error::Context {
            context: context.into(),
            source,
        })
    }
    /// This error as one of the file `path`, if it names no file; any other error passes unchanged.
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        self.wrap_unlocated(|source| Error::InFile {
            path: path.into(),
            source,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_wraps_only_errors_that_name_no_file() {
        let e = Error::usage("must be positive")
            .context("key `train.lr`")
            .in_file("s.toml");
        assert_eq!(e.to_string(), "s.toml: key `train.lr`: must be positive");
        assert_eq!(e.exit_code(), 2);
        let io = Error::io("data.bin", std::io::Error::other("gone"))
            .context("key `id`")
            .in_file("s.toml");
        assert_eq!(io.to_string(), "data.bin: gone");
        assert_eq!(Error::Internal("bug".into()).context("key `id`").exit_code(), 1);
    }
}
