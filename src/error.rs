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
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The user asked for something that cannot be done as asked: a bad argument, a config
    /// that contradicts what is on disk. Not for failures at run time (exit 2 tells a service
    /// manager not to restart).
    #[error("{0}")]
    Usage(String),
    /// Another deltadrop holds the state lock this command needs: a runtime condition, as for
    /// a second daemon.
    #[error("{message}")]
    Locked { message: String, source: StateError },
    #[error("cannot install the signal handler: {0}")]
    Signal(#[from] ctrlc::Error),
    /// A report could not be written as JSON (a bug: every report serializes).
    #[error("internal error: writing JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The Windows service control manager refused: `what` was being done.
    #[cfg(windows)]
    #[error("{what}: {source} (run from an Administrator prompt?)")]
    Service {
        what: String,
        source: windows_service::Error,
    },
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
    /// 2 for configuration and usage errors, 1 for everything else (see README, "Exit codes").
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
