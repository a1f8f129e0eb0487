//! The library's error: one enum over each stage's own, and the exit code each maps to.

use crate::config::ConfigError;
use crate::delta::DeltaError;
use crate::state::StateError;
use crate::watch::WatchError;

/// Every error the library returns; each module has its own enum underneath.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Delta(#[from] DeltaError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The user asked for something that cannot be done as asked.
    #[error("{0}")]
    Usage(String),
    /// The run stopped on purpose because of bad data (`on_bad_row = "fail"`).
    #[error("stopped by on_bad_row = \"fail\": {0}; the file is still in the inbox")]
    BadData(String),
    /// A part of the daemon failed in a way that is a bug, not a condition (a thread panicked).
    #[error("internal error: {0}")]
    Internal(String),
    /// `deltadrop status` found no daemon to ask.
    #[error("{0}")]
    NotRunning(String),
}

impl Error {
    /// 2 for configuration and usage errors, 1 for everything else (see README).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// An I/O error with what was being done.
pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
