//! systemd `Type=notify`: READY=1 once the inboxes are watched, WATCHDOG=1 while every loop that
//! commits goes round, STATUS= with the backlog, STOPPING=1 at the stop. Outside systemd (no
//! `NOTIFY_SOCKET`) nothing is sent and nothing wakes up for it.
//!
//! The watchdog is fed by the committers, not by a timer thread of its own: each committer's
//! loop [`Beat::beat`]s at least every half `WatchdogSec` (it waits for work with that timeout),
//! and WATCHDOG=1 is sent only while *every* committer has beaten within `WatchdogSec`. A
//! committer stuck in a call that never returns stops the pings, and systemd restarts the
//! daemon; one that is retrying a table that is down keeps beating (its backoff sleeps in
//! slices).

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

/// READY=1: the inboxes are watched.
pub fn ready(status: &str) {
    send(&["READY=1".to_string(), format!("STATUS={status}")]);
}

/// STOPPING=1: in-flight commits are being finished.
pub fn stopping() {
    send(&["STOPPING=1".to_string()]);
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
