//! A real Azurite for tests: started by `scripts/azurite.sh` (which installs it from npm) on a
//! free port, one per test, stopped on drop.
//!
//! Daemons use object_store's emulator mode, as users running Azurite would:
//! `azure_storage_use_emulator = "true"` in the feed's storage options, and the emulator's URL
//! in `AZURITE_BLOB_STORAGE_URL` (object_store takes it only from the environment). Azurite's
//! own quirk makes that mode necessary: it ignores the `startFrom` of a blob listing, which
//! object_store filters on the client side only in emulator mode; with a plain endpoint a
//! table with a checkpoint loads wrong. The test process reads tables back through that same
//! process-wide variable, so tests holding an `Azurite` run one at a time (`SERIAL`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published development key (the same for every Azurite): not a secret.
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub struct Azurite {
    dir: tempfile::TempDir,
    port: u16,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Azurite {
    pub fn start() -> Azurite {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("tempdir");
        let port = launch(dir.path(), None);
        // For this process's own reads; daemons get it through `env()`.
        for (k, v) in env_for(port) {
            std::env::set_var(k, v);
        }
        Azurite {
            dir,
            port,
            _serial: serial,
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        env_for(self.port)
    }

    /// Storage down: the process is gone, its blobs stay on disk.
    pub fn stop(&self) {
        let ok = Command::new("bash")
            .arg(script())
            .args(["stop", &self.dir.path().display().to_string()])
            .status()
            .expect("azurite.sh stop")
            .success();
        assert!(ok, "azurite.sh stop failed");
    }

    /// Back on the same port with the same blobs.
    pub fn restart(&self) {
        launch(self.dir.path(), Some(self.port));
    }

    pub fn options(&self) -> HashMap<String, String> {
        [
            ("azure_storage_use_emulator", "true"),
            ("azure_storage_account_name", ACCOUNT),
            ("azure_storage_account_key", KEY),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn options_toml(&self) -> String {
        let mut s = String::from("[feed.storage_options]\n");
        let mut opts: Vec<_> = self.options().into_iter().collect();
        opts.sort();
        for (k, v) in opts {
            s.push_str(&format!("{k} = \"{v}\"\n"));
        }
        s
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", &self.dir.path().display().to_string()])
            .status();
    }
}

fn env_for(port: u16) -> Vec<(String, String)> {
    vec![(
        "AZURITE_BLOB_STORAGE_URL".to_string(),
        format!("http://127.0.0.1:{port}"),
    )]
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/azurite.sh")
}

/// Starts Azurite in `dir` (installing it on first use); returns its port.
fn launch(dir: &Path, port: Option<u16>) -> u16 {
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .args(["start", &dir.display().to_string()]);
    if let Some(p) = port {
        cmd.env("AZURITE_PORT", p.to_string());
    }
    let out = cmd.output().expect("run scripts/azurite.sh");
    assert!(
        out.status.success(),
        "scripts/azurite.sh start failed (needs node + npm):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("export AZURITE_PORT="))
        .and_then(|p| p.trim().parse().ok())
        .expect("azurite.sh prints AZURITE_PORT")
}

/// A unique table location in the container, per test and run: `az://lake/<name>-<id>/<table>`.
pub fn unique_url(name: &str, table: &str) -> url::Url {
    let id = uuid::Uuid::new_v4().simple().to_string();
    url::Url::parse(&format!("az://lake/{name}-{}/{table}", &id[..8])).expect("url")
}
