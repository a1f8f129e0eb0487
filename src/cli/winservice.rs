//! `deltadrop service install|uninstall|run`: the Windows service front end. Installed with the
//! config it runs, started by the service control manager as `deltadrop service run`, stopped
//! by it like Ctrl-C. The state reports while it runs go through `service::windows`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceErrorControl, ServiceInfo, ServiceStartType,
    ServiceState, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use crate::config::Config;
use crate::daemon::{run, RunOptions};
use crate::error::{io_err, Error};
use crate::service::windows::{report, report_stopped, set_handle};
use crate::shutdown::Shutdown;

/// What `service run` was given, for the service's main function (which the dispatcher
/// calls on a thread of its own, without our arguments).
struct Args {
    name: String,
    config: PathBuf,
}
static ARGS: OnceLock<Args> = OnceLock::new();
/// The run's exit code, for `run_as_service` to return.
static EXIT: Mutex<i32> = Mutex::new(0);

fn api(what: &str) -> impl Fn(windows_service::Error) -> Error + '_ {
    move |source| Error::Service {
        what: what.to_string(),
        source,
    }
}

/// Registers the service `name`, started at boot, running `deltadrop service run` with
/// `config` (made absolute: the service starts in C:\Windows\System32).
pub(super) fn install(name: &str, config: &Path) -> Result<(), Error> {
    let config = std::path::absolute(config).map_err(io_err(config.display().to_string()))?;
    // Fails now, with the reason, rather than at every boot.
    Config::load(&config)?;
    let exe = std::env::current_exe().map_err(io_err("cannot find deltadrop.exe"))?;
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
pub(super) fn uninstall(name: &str) -> Result<(), Error> {
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
pub(super) fn log_path(config: &Path) -> PathBuf {
    config.with_file_name("deltadrop.log")
}

/// `deltadrop service run`: hands the process to the service control manager, which
/// calls [`service_main`]; returns the run's exit code once the service has stopped.
pub(super) fn run_as_service(name: &str, config: &Path) -> Result<i32, Error> {
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
        Ok(h) => set_handle(h),
        Err(e) => {
            log::error!("cannot register with the service control manager: {e}");
            return;
        }
    }
    // Running is reported once the inboxes are watched (`service::ready`).
    report(ServiceState::StartPending);
    let code = match Config::load(&args.config)
        .map_err(Error::from)
        .and_then(|cfg| run(&cfg, RunOptions::default(), shutdown))
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
