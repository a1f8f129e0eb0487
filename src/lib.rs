//! deltadrop: a daemon that turns a drop folder of CSV files into a Delta Lake table, exactly once.
//!
//! One module per pipeline stage, in the order a file travels (ARCHITECTURE.md follows one
//! through them, function by function):
//!
//! `watch` (events + poll → complete files) → `job` (the values that cross channels) → `pool`
//! (workers) → `ingest` (CSV → typed Arrow batches, bad rows apart) → `delta` (one committer per
//! table, exactly once with `state`) → `archive` (where every file's trip ends: processed/,
//! rejected/, a retry) and `state` (intents, the loaded index, locks).
//!
//! Beside them: `config` (the TOML file), `schema` (table columns), `counters` (the one set of
//! per-feed counters), `tracker` (which file is where), `shutdown` (the stop signal), `service`
//! (telling systemd or Windows' service manager: ready, stopping, the watchdog fed by the
//! committers), `maintain` (compaction, vacuum, checkpoints), `ops` (status endpoint, metrics,
//! inspect), `daemon` (the run loop: `daemon::run`) and `cli` (the command line, and the Windows
//! service front end that installs and starts the run loop).
//!
//! No re-exports at the root: a module that named `crate::run` would import the run loop
//! through this file, a circle the module paths do not show.

pub mod archive;
pub mod cli;
pub mod config;
pub mod counters;
pub mod daemon;
pub mod delta;
pub mod error;
pub mod ingest;
pub mod job;
pub mod maintain;
pub mod ops;
pub mod pool;
pub mod requeue;
pub mod schema;
pub mod service;
pub mod shutdown;
pub mod state;
pub mod tracker;
pub mod watch;
