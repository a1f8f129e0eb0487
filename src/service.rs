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
//! Windows: `deltadrop service install|uninstall` registers the daemon with the service
//! control manager, which starts `deltadrop service run`; [`ready`] and [`stopping`] report
//! Running and StopPending to it, and a service stop triggers the same clean stop as Ctrl-C.

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
pub use windows::{install, log_path, run_as_service, uninstall};

#[cfg(windows)]
mod windows {
    //! The Windows service: installed with the config it runs, started by the service control
    //! manager as `deltadrop service run`, stopped by it like Ctrl-C.

    use std::ffi::OsString;
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, OnceLock};
    use std::time::Duration;

    use windows_service::service::{
        ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
        ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{
        self, ServiceControlHandlerResult, ServiceStatusHandle,
    };
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    use windows_service::{define_windows_service, service_dispatcher};

    use crate::config::Config;
    use crate::error::Error;
    use crate::shutdown::Shutdown;

    /// What `service run` was given, for the service's main function (which the dispatcher
    /// calls on a thread of its own, without our arguments).
    struct Args {
        name: String,
        config: PathBuf,
    }
    static ARGS: OnceLock<Args> = OnceLock::new();
    /// The handle to report the service's state with, once it is registered.
    static STATUS: Mutex<Option<ServiceStatusHandle>> = Mutex::new(None);
    /// The run's exit code, for `run_as_service` to return.
    static EXIT: Mutex<i32> = Mutex::new(0);

    fn api(what: &str) -> impl Fn(windows_service::Error) -> Error + '_ {
        move |e| Error::Usage(format!("{what}: {e} (run from an Administrator prompt?)"))
    }

    /// Registers the service `name`, started at boot, running `deltadrop service run` with
    /// `config` (made absolute: the service starts in C:\Windows\System32).
    pub fn install(name: &str, config: &Path) -> Result<(), Error> {
        let config = std::path::absolute(config)
            .map_err(|e| Error::Usage(format!("{}: {e}", config.display())))?;
        // Fails now, with the reason, rather than at every boot.
        Config::load(&config)?;
        let exe = std::env::current_exe()
            .map_err(|e| Error::Usage(format!("cannot find deltadrop.exe: {e}")))?;
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )
        .map_err(api("cannot open the service control manager"))?;
        let info = ServiceInfo {
            name: OsString::from(name),
            display_name: OsString::from(format!("deltadrop ({name})")),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: exe,
            launch_arguments: vec![
                OsString::from("service"),
                OsString::from("run"),
                OsString::from("--name"),
                OsString::from(name),
                OsString::from("--config"),
                config.clone().into_os_string(),
            ],
            dependencies: vec![],
            account_name: None,
            account_password: None,
        };
        let service = manager
            .create_service(&info, ServiceAccess::CHANGE_CONFIG)
            .map_err(api(&format!("cannot create the service {name}")))?;
        let _ = service.set_description("drop folder to Delta Lake table (deltadrop)");
        log::info!(
            "service {name} installed (starts at boot) with {}; start it now with: sc start {name}; logs in {}",
            config.display(),
            log_path(&config).display()
        );
        Ok(())
    }

    /// Stops (if running) and removes the service `name`.
    pub fn uninstall(name: &str) -> Result<(), Error> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .map_err(api("cannot open the service control manager"))?;
        let service = manager
            .open_service(
                name,
                ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
            )
            .map_err(api(&format!("no service {name}")))?;
        if service
            .query_status()
            .is_ok_and(|s| s.current_state != ServiceState::Stopped)
        {
            let _ = service.stop();
        }
        service
            .delete()
            .map_err(api(&format!("cannot remove the service {name}")))?;
        log::info!("service {name} removed (it finishes its in-flight commits if it was running)");
        Ok(())
    }

    /// Where the service logs: beside its config (a service has no console).
    pub fn log_path(config: &Path) -> PathBuf {
        config.with_file_name("deltadrop.log")
    }

    /// `deltadrop service run`: hands the process to the service control manager, which
    /// calls [`service_main`]; returns the run's exit code once the service has stopped.
    pub fn run_as_service(name: &str, config: &Path) -> Result<i32, Error> {
        let _ = ARGS.set(Args {
            name: name.to_string(),
            config: config.to_path_buf(),
        });
        service_dispatcher::start(name, ffi_service_main).map_err(|e| {
            Error::Usage(format!(
                "`service run` is started by the service control manager (install with `deltadrop service install`): {e}"
            ))
        })?;
        Ok(*EXIT.lock().unwrap_or_else(|e| e.into_inner()))
    }

    define_windows_service!(ffi_service_main, service_main);

    fn service_main(_: Vec<OsString>) {
        let Some(args) = ARGS.get() else {
            return;
        };
        let shutdown = Shutdown::default();
        let stop = shutdown.clone();
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
                log::info!("service stop requested: finishing in-flight commits");
                report(ServiceState::StopPending);
                stop.trigger();
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        match service_control_handler::register(&args.name, handler) {
            Ok(h) => *STATUS.lock().unwrap_or_else(|e| e.into_inner()) = Some(h),
            Err(e) => {
                log::error!("cannot register with the service control manager: {e}");
                return;
            }
        }
        // Running is reported once the inboxes are watched (`ready`).
        report(ServiceState::StartPending);
        let code = match Config::load(&args.config)
            .map_err(Error::from)
            .and_then(|cfg| crate::run(&cfg, crate::RunOptions::default(), shutdown))
        {
            Ok(_) => 0,
            Err(e) => {
                log::error!("{e}");
                e.exit_code()
            }
        };
        *EXIT.lock().unwrap_or_else(|e| e.into_inner()) = code;
        report_stopped(code);
    }

    /// Reports `state` if running as a service (a no-op otherwise).
    pub fn report(state: ServiceState) {
        set_status(state, ServiceExitCode::Win32(0));
    }

    fn report_stopped(code: i32) {
        let exit = if code == 0 {
            ServiceExitCode::Win32(0)
        } else {
            ServiceExitCode::ServiceSpecific(code as u32)
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
