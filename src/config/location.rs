//! Where things are: table locations (paths and `file://`, `az://`, `abfss://`, `s3://` URLs),
//! their object-store options (never printed), and paths made absolute without touching the
//! filesystem.

use std::path::{Path, PathBuf};

use url::Url;

/// Object store options (credentials among them). Debug shows the keys and hides the values
/// of anything that may be a secret, so `check`, logs and panics never print a credential.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions(pub std::collections::HashMap<String, String>);

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.0.keys().collect();
        keys.sort();
        let shown: Vec<String> = keys
            .into_iter()
            .map(|k| {
                let lower = k.to_ascii_lowercase();
                let secret = [
                    "key",
                    "secret",
                    "token",
                    "password",
                    "sas",
                    "signature",
                    "credential",
                ]
                .iter()
                .any(|s| lower.contains(s));
                if secret {
                    format!("{k}=<redacted>")
                } else {
                    format!("{k}={}", self.0[k])
                }
            })
            .collect();
        write!(f, "{}", shown.join(", "))
    }
}

/// Table URL schemes this build writes: local files, Azure Blob / ADLS Gen2, S3.
const SCHEMES: [&str; 8] = ["file", "az", "azure", "abfs", "abfss", "adl", "s3", "s3a"];

pub(super) fn check_scheme(url: &Url) -> Result<(), String> {
    if SCHEMES.contains(&url.scheme()) {
        Ok(())
    } else {
        Err(format!(
            "table {url}: scheme '{}' is not supported (use a path, file://, az://, abfss:// or s3://)",
            url.scheme()
        ))
    }
}

/// Inbox URL schemes: an inbox in Azure Blob / ADLS Gen2 or S3 is listed and read through
/// object_store; `file://` too (an object store on a local disk: listing, no events — for
/// tests; a local folder is a path).
const INBOX_SCHEMES: [&str; 7] = ["file", "az", "azure", "abfs", "abfss", "s3", "s3a"];

pub(super) fn check_inbox_scheme(url: &Url) -> Result<(), String> {
    if !INBOX_SCHEMES.contains(&url.scheme()) {
        return Err(format!(
            "inbox {url}: scheme '{}' is not supported (a folder path, or az://, abfss://, s3://, file://)",
            url.scheme()
        ));
    }
    if url.scheme() != "file" && url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "inbox {url}: name the container or bucket (az://CONTAINER/PREFIX, s3://BUCKET/PREFIX)"
        ));
    }
    Ok(())
}

/// Refuses a URI in a local folder setting (`processed`/`rejected` beside a local inbox,
/// `state_dir`): joined to the config's folder as a path, `s3://b/done` would make a local
/// folder named `s3:`. A URI is `scheme://` with a scheme of two characters or more, as for
/// tables: `C:\drop`, `C:/drop` and `\\server\share` stay paths.
pub(super) fn check_local_folder(setting: &str, value: &Path) -> Result<(), String> {
    let text = value.to_string_lossy();
    if !has_uri_scheme(&text) {
        return Ok(());
    }
    // A `file://` URL names a local folder: say how to write it.
    let as_path = Url::parse(&text)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
        .map(|p| {
            format!(
                "; write it as a path: {setting} = {:?}",
                p.display().to_string()
            )
        })
        .unwrap_or_default();
    let why = if setting == "state_dir" {
        "state_dir must be a local folder"
    } else {
        "the inbox is a local folder, so processed and rejected are too (an inbox in object \
         storage — az://, abfss://, s3:// — archives into URIs of its store)"
    };
    Err(format!("{setting} = {text:?} is a URI, but {why}{as_path}"))
}

/// Whether `text` starts with a URI scheme of two characters or more and `://` (so `C:\drop`
/// and `\\server\share` stay paths).
fn has_uri_scheme(text: &str) -> bool {
    text.split_once("://").is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// A folder setting's value as a URI, if it is written as one (`az://…`, `s3://…`,
/// `file:///…`), by the same rule as [`check_local_folder`].
pub(super) fn uri_of(value: &Path) -> Option<Url> {
    let text = value.to_str()?;
    has_uri_scheme(text)
        .then(|| Url::parse(text).ok())
        .flatten()
}

/// A table is a URI when it has a scheme of two letters or more (so `C:\...` stays a path).
pub(super) fn resolve_table(table: &str, base_dir: &Path) -> Result<Url, String> {
    if let Ok(url) = Url::parse(table) {
        if url.scheme().len() > 1 {
            return Ok(url);
        }
    }
    let path = base_dir.join(table);
    Url::from_directory_path(normalize(&path))
        .map_err(|_| format!("table path {} cannot be made a URL", path.display()))
}

pub(super) fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        normalize(p)
    } else {
        match std::env::current_dir() {
            Ok(cwd) => normalize(&cwd.join(p)),
            Err(_) => p.to_path_buf(),
        }
    }
}

/// Removes `.` and `..` components without touching the filesystem.
pub(super) fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
