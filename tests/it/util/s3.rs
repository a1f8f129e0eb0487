//! An S3 API for tests: moto's server, started by `scripts/s3-mock.sh` (which installs it from
//! PyPI) on a free port, one per test, stopped on drop.

use std::collections::HashMap;
use std::fs;

use super::Dir;

/// An S3 API (moto's server, `scripts/s3-mock.sh`) on a free port.
pub struct S3Mock {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl S3Mock {
    pub fn start() -> S3Mock {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3-mock.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .args(["start", &dir.path().display().to_string()])
            .output()
            .expect("run scripts/s3-mock.sh");
        assert!(
            out.status.success(),
            "scripts/s3-mock.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let endpoint = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("export S3_MOCK_ENDPOINT="))
            .expect("endpoint")
            .trim()
            .to_string();
        S3Mock { dir, endpoint }
    }

    pub fn options(&self) -> HashMap<String, String> {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
            ("aws_region", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl S3Mock {
    /// A fresh s3:// table and two daemon folders (instances east and west) whose feed writes
    /// it, with `feed_lines` in the feed's block.
    pub fn two_daemons(&self, feed_lines: &str) -> (url::Url, Vec<Dir>) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let table = url::Url::parse(&format!("s3://lake/t-{}/sales", &id[..8])).expect("url");
        let options_toml = super::objects::options_toml(&self.options());
        let dirs = ["east", "west"]
            .iter()
            .map(|n| {
                let d = Dir::empty();
                d.write_config(&format!(
                    "instance = \"{n}\"\npoll_interval = \"300ms\"\nsettle = \"200ms\"\n[http]\nenabled = false\n\
                     [[feed]]\nname = \"sales\"\ntable = \"{table}\"\n{feed_lines}\
                     [feed.storage_options]\n{options_toml}"
                ));
                fs::create_dir_all(d.inbox()).expect("inbox");
                d
            })
            .collect();
        (table, dirs)
    }
}

impl Drop for S3Mock {
    fn drop(&mut self) {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3-mock.sh");
        let _ = std::process::Command::new("bash")
            .arg(script)
            .args(["stop", &self.dir.path().display().to_string()])
            .status();
    }
}
