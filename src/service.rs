//! Telling the service manager how the daemon is doing.
//!
//! systemd (`Type=notify`): READY=1 once the inboxes are watched, WATCHDOG=1 while every loop
//! that commits goes round, STATUS= with the backlog, STOPPING=1 at the stop. Outside systemd
//! (no `NOTIFY_SOCKET`) nothing is sent and nothing wakes up for it.
//!
//! The watchdog is fed by the committers, not by a timer thread of its own: each committer's
//! loop [`Beat::beat`]s at least every half `WatchdogSec` (it waits for work with that timeout),
//! and WATCHDOG=1 is sent only while *every* committer has beaten within `WatchdogSec`. A
//! committer stuck in a call that never returns stops the pings, and systemd restarts the
//! daemon; one that is retrying a table that is down keeps beating (its backoff sleeps in
//! slices).
//!
//! Windows: under `deltadrop service run` (the front end is cli/winservice.rs), [`ready`] and
//! [`stopping`] report Running and StopPending to the service control manager.
//!
//! A low room: it imports nothing of the pipeline, so the committers can feed the watchdog
//! without an import circle back to the run loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The service manager's watchdog, and what to say in STATUS=.
pub struct Watchdog {
    /// `WatchdogSec` as systemd passed it (`WATCHDOG_USEC`); None: no watchdog.
    timeout: Option<Duration>,
    inner: Mutex<Beats>,
    status: Box<dyn Fn() -> String + Send + Sync>,
}

#[derive(Default)]
struct Beats {
    next_id: usize,
    /// Each registered loop's last beat.
    last: HashMap<usize, Instant>,
    /// When WATCHDOG=1 was last sent.
    sent: Option<Instant>,
}

impl Watchdog {
    /// Reads `WATCHDOG_USEC` (and `WATCHDOG_PID`); `status` says what STATUS= carries.
    pub fn from_env(status: impl Fn() -> String + Send + Sync + 'static) -> Arc<Watchdog> {
        Arc::new(Watchdog {
            timeout: watchdog_timeout(),
            inner: Mutex::new(Beats::default()),
            status: Box::new(status),
        })
    }

    /// How often a loop that feeds the watchdog must come round (None: no watchdog, wait
    /// freely).
    pub fn tick(&self) -> Option<Duration> {
        self.timeout.map(|t| t / 2)
    }

    /// A loop that from now on must beat for the daemon to be alive.
    pub fn register(self: &Arc<Self>) -> Beat {
        let mut b = self.lock();
        let id = b.next_id;
        b.next_id += 1;
        b.last.insert(id, Instant::now());
        Beat {
            dog: self.clone(),
            id,
        }
    }

    /// With no loop registered (every feed waits for a first file, or between two pipelines):
    /// the caller's own loop is the proof of life.
    pub fn idle(&self) {
        let mut b = self.lock();
        if b.last.is_empty() {
            self.maybe_send(&mut b);
        }
    }

    fn beat(&self, id: usize) {
        let mut b = self.lock();
        b.last.insert(id, Instant::now());
        self.maybe_send(&mut b);
    }

    fn maybe_send(&self, b: &mut Beats) {
        let Some(timeout) = self.timeout else {
            return;
        };
        let all_alive = b.last.values().all(|t| t.elapsed() < timeout);
        // Four pings per timeout are plenty; more would only cost wake-ups.
        let due = b.sent.is_none_or(|s| s.elapsed() >= timeout / 4);
        if all_alive && due {
            b.sent = Some(Instant::now());
            notify_watchdog(&(self.status)());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Beats> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One registered loop's handle: beat it each time round; dropped, the loop no longer counts.
pub struct Beat {
    dog: Arc<Watchdog>,
    id: usize,
}

impl Beat {
    pub fn beat(&self) {
        self.dog.beat(self.id);
    }

    /// See [`Watchdog::tick`].
    pub fn tick(&self) -> Option<Duration> {
        self.dog.tick()
    }

    /// Sleeps `d`, beating at least every tick: a backoff is not a hang.
    pub fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        loop {
            self.beat();
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(self.tick().map_or(left, |t| t.min(left)));
        }
    }
}

impl Drop for Beat {
    fn drop(&mut self) {
        self.dog.lock().last.remove(&self.id);
    }
}

/// The inboxes are watched: READY=1 (systemd), Running (Windows service).
pub fn ready(status: &str) {
    send(&["READY=1".to_string(), format!("STATUS={status}")]);
    #[cfg(windows)]
    windows::report(windows_service::service::ServiceState::Running);
}

/// In-flight commits are being finished: STOPPING=1 (systemd), StopPending (Windows service).
pub fn stopping() {
    send(&["STOPPING=1".to_string()]);
    #[cfg(windows)]
    windows::report(windows_service::service::ServiceState::StopPending);
}

fn notify_watchdog(status: &str) {
    send(&["WATCHDOG=1".to_string(), format!("STATUS={status}")]);
}

#[cfg(unix)]
fn watchdog_timeout() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

#[cfg(unix)]
fn send(lines: &[String]) {
    use sd_notify::NotifyState;
    let states: Vec<NotifyState> = lines
        .iter()
        .map(|l| match l.as_str() {
            "READY=1" => NotifyState::Ready,
            "STOPPING=1" => NotifyState::Stopping,
            "WATCHDOG=1" => NotifyState::Watchdog,
            other => NotifyState::Status(other.strip_prefix("STATUS=").unwrap_or(other)),
        })
        .collect();
    if let Err(e) = sd_notify::notify(&states) {
        log::debug!("systemd notification failed: {e}");
    }
}

#[cfg(not(unix))]
fn watchdog_timeout() -> Option<Duration> {
    None
}

#[cfg(not(unix))]
fn send(_: &[String]) {}

#[cfg(windows)]
pub(crate) mod windows {
    //! The Windows service control manager's status handle, once `deltadrop service run` has
    //! registered with it (cli/winservice.rs), and the state reports made through it. Here, not
    //! in the front end, because the run loop reports Running and StopPending and must not
    //! import the front end (which starts the run loop).

    use std::sync::Mutex;
    use std::time::Duration;

    use windows_service::service::{
        ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::ServiceStatusHandle;

    /// The handle to report the service's state with, once it is registered.
    static STATUS: Mutex<Option<ServiceStatusHandle>> = Mutex::new(None);

    /// From now on, states are reported to the service control manager through `handle`.
    pub(crate) fn set_handle(handle: ServiceStatusHandle) {
        *STATUS.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    /// Reports `state` if running as a service (a no-op otherwise).
    pub(crate) fn report(state: ServiceState) {
        set_status(state, ServiceExitCode::Win32(0));
    }

    /// The service has stopped with the run's exit `code`.
    pub(crate) fn report_stopped(code: i32) {
        let exit = if code == 0 {
            ServiceExitCode::Win32(0)
        } else {
            ServiceExitCode::ServiceSpecific(code.unsigned_abs())
        };
        set_status(ServiceState::Stopped, exit);
    }

    fn set_status(state: ServiceState, exit_code: ServiceExitCode) {
        let guard = STATUS.lock().unwrap_or_else(|e| e.into_inner());
        let Some(handle) = guard.as_ref() else {
            return;
        };
        let controls_accepted = match state {
            ServiceState::Running => ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
            _ => ServiceControlAccept::empty(),
        };
        let pending = matches!(
            state,
            ServiceState::StartPending | ServiceState::StopPending
        );
        let status = ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted,
            exit_code,
            checkpoint: 0,
            // Opening a large cloud table, or finishing a commit, may take a while.
            wait_hint: if pending {
                Duration::from_secs(120)
            } else {
                Duration::ZERO
            },
            process_id: None,
        };
        if let Err(e) = handle.set_service_status(status) {
            log::warn!("cannot report the service state: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_stops_beating_stops_the_pings() {
        let dog = Arc::new(Watchdog {
            timeout: Some(Duration::from_millis(200)),
            inner: Mutex::new(Beats::default()),
            status: Box::new(String::new),
        });
        let a = dog.register();
        let b = dog.register();
        a.beat();
        assert!(dog.lock().sent.is_some(), "both fresh: a ping");
        dog.lock().sent = None;
        // b last beat long ago (as if stuck): a's beats no longer ping.
        dog.lock()
            .last
            .insert(b.id, Instant::now() - Duration::from_secs(1));
        a.beat();
        assert!(
            dog.lock().sent.is_none(),
            "a stuck loop must stop the pings"
        );
        // Once b is gone (its pipeline ended), a alone is enough again.
        drop(b);
        a.beat();
        assert!(dog.lock().sent.is_some());
    }
}
