//! Operating a daemon: its status endpoint (the page at `/`, `/status`, `/metrics`, `/health`)
//! and the `deltadrop status` client, what it says from its counters, and `deltadrop inspect`.

pub mod inspect;
pub mod metrics;
pub mod page;
pub mod status;
