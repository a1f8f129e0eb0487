//! The object store side of a remote inbox: building the store, keys, downloads, copies, and
//! errors that name what to do.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::logstore::object_store::path::Path as Key;
use deltalake::logstore::object_store::{
    Error as StoreError, GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload,
    WriteMultipart,
};
use futures_util::StreamExt;

use crate::archive::{archive_names, COPIES_LOOKED_UP};
use crate::config::StorageOptions;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoteError {
    #[error("{0}")]
    Store(String),
    #[error("cannot open the inbox's store {url}: {source}")]
    Open {
        url: String,
        source: Box<deltalake::DeltaTableError>,
    },
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Local(PathBuf, #[source] std::io::Error),
    #[error("looking in the table's log: {0}")]
    Table(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(String),
}

/// The store holding `inbox` (rooted at its container or bucket, so that objects can be copied
/// to `processed`/`rejected` within it), and the inbox's key prefix in it.
pub(super) fn store_for(
    inbox: &url::Url,
    options: &StorageOptions,
) -> Result<(Arc<dyn ObjectStore>, Key), RemoteError> {
    let mut root = inbox.clone();
    root.set_path("/");
    let open = |source| RemoteError::Open {
        url: root.to_string(),
        source: Box::new(source),
    };
    let store = deltalake::DeltaTableBuilder::from_url(root.clone())
        .map_err(open)?
        .with_storage_options(options.0.clone())
        .build_storage()
        .map_err(open)?
        .object_store(None);
    Ok((store, key_of(inbox)))
}

/// A URL's key prefix in its store (its path without the leading and trailing '/').
pub(super) fn key_of(u: &url::Url) -> Key {
    Key::from_url_path(u.path().trim_matches('/'))
        .unwrap_or_else(|_| Key::from(u.path().trim_matches('/')))
}

/// An error of the store in words a user can act on: refused credentials name the settings.
/// Azure and S3 refusals often arrive as a generic HTTP error (`403 Forbidden` with an XML
/// body), so the status is looked for in the text too; only the first line of the store's
/// answer is kept.
pub(super) fn describe(e: &StoreError, inbox: &url::Url) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let refused = matches!(
        e,
        StoreError::Unauthenticated { .. } | StoreError::PermissionDenied { .. }
    ) || ["401 Unauthorized", "403 Forbidden"]
        .iter()
        .any(|s| first.contains(s));
    if refused {
        return format!(
            "the store refused the credentials for {inbox}: set them in the feed's storage_options \
             (azure_storage_account_name + azure_storage_account_key or azure_storage_sas_token; \
             aws_access_key_id + aws_secret_access_key) or the environment ({first})"
        );
    }
    match e {
        StoreError::NotFound { .. } => {
            format!("{inbox} does not exist (is the container or bucket there?): {first}")
        }
        _ => format!("the store of {inbox} cannot be reached: {first}"),
    }
}

/// Streams `o` into `to` in chunks (memory bounded whatever its size) if it is still the
/// object listed (its ETag), flushed to disk. Returns the blake3 hash of its bytes, or None if
/// it changed or went away since it was listed.
pub(super) async fn download(
    store: &dyn ObjectStore,
    o: &ObjectMeta,
    to: &Path,
) -> Result<Option<String>, RemoteError> {
    let options = GetOptions {
        if_match: o.e_tag.clone(),
        ..Default::default()
    };
    let got = match store.get_opts(&o.location, options).await {
        Ok(g) => g,
        Err(StoreError::NotFound { .. } | StoreError::Precondition { .. }) => return Ok(None),
        Err(e) => return Err(RemoteError::Store(e.to_string())),
    };
    let local = |e| RemoteError::Local(to.to_path_buf(), e);
    let mut file = std::fs::File::create(to).map_err(local)?;
    let mut hasher = blake3::Hasher::new();
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(to);
                return Err(RemoteError::Store(format!("reading {}: {e}", o.location)));
            }
        };
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(local)?;
        crate::delta::crash_point("during_download");
        crate::delta::pause_point("during_download");
    }
    file.sync_all().map_err(local)?;
    Ok(Some(hasher.finalize().to_hex().to_string()))
}

/// Whether two ETags name the same version of an object. A store may quote an ETag in one
/// answer and not in another (Azure: a listing's `Etag` element bare, HEAD's header quoted);
/// an object whose ETag is unknown on either side is taken as unchanged (its size still
/// counts).
pub(super) fn same_e_tag(a: Option<&str>, b: Option<&str>) -> bool {
    let bare = |t: &str| t.trim_start_matches("W/").trim_matches('"').to_string();
    match (a, b) {
        (Some(a), Some(b)) => bare(a) == bare(b),
        _ => true,
    }
}

/// A ready marker's object, written beside its data file.
pub(super) async fn download_marker(
    store: &dyn ObjectStore,
    key: &Key,
    to: &Path,
) -> Result<(), RemoteError> {
    let bytes = store
        .get(key)
        .await
        .map_err(|e| RemoteError::Store(e.to_string()))?
        .bytes()
        .await
        .map_err(|e| RemoteError::Store(e.to_string()))?;
    std::fs::write(to, &bytes).map_err(|e| RemoteError::Local(to.to_path_buf(), e))
}

/// Copies `from` to `NAME` under `prefix`, or `NAME.1.ext`, `NAME.2.ext`… when taken (an
/// archived object is never overwritten). A name that already holds this very content (`copy`:
/// a copy made before a crash, the delete after it not done) is where it went: an object is
/// never archived twice. Returns where it went.
pub(super) async fn copy_to_free_name(
    store: &dyn ObjectStore,
    from: &Key,
    prefix: &Key,
    name: &str,
    copy: &LocalCopy<'_>,
) -> Result<Key, RemoteError> {
    let plain_copy = |to: Key| async move {
        store
            .copy(from, &to)
            .await
            .map(|()| to.clone())
            .map_err(|e| RemoteError::Store(format!("copying {from} to {to}: {e}")))
    };
    for to in free_names(prefix, name) {
        match store.copy_if_not_exists(from, &to).await {
            Ok(()) => return Ok(to),
            // Taken, or a store without a conditional copy (S3 unless configured): look.
            Err(
                StoreError::AlreadyExists { .. }
                | StoreError::NotImplemented { .. }
                | StoreError::NotSupported { .. },
            ) => {}
            Err(e) => return Err(RemoteError::Store(format!("copying {from} to {to}: {e}"))),
        }
        match store.head(&to).await {
            Ok(there) if copy.is(store, &there).await? => return Ok(to),
            Ok(_) => {}
            // Free after all: the store has no conditional copy, or answers one as if the name
            // were taken (an S3 API whose multipart copy refuses `If-None-Match`) — a plain
            // copy to the name just seen free.
            Err(StoreError::NotFound { .. }) => return plain_copy(to).await,
            Err(e) => return Err(RemoteError::Store(e.to_string())),
        }
    }
    Err(no_free_name(prefix, name))
}

/// The keys under `prefix` an archived object of `name` may take ([`archive_names`]), as
/// many as an archive looks through.
fn free_names<'a>(prefix: &'a Key, name: &'a str) -> impl Iterator<Item = Key> + 'a {
    archive_names(name)
        .take(MAX_NAMES)
        .map(|n| prefix.clone().join(n.as_str()))
}

const MAX_NAMES: usize = 100_000;

fn no_free_name(prefix: &Key, name: &str) -> RemoteError {
    RemoteError::Store(format!(
        "no free name for {name} under {prefix}: {MAX_NAMES} objects of that name are archived there"
    ))
}

/// Uploads the local copy of an object (the bytes that were loaded) to `NAME` under `prefix`,
/// or the next free numbered name — for an object replaced in the inbox after it was read,
/// whose own bytes are then only here. Streamed in parts (memory bounded whatever its size). A
/// name that already holds these bytes (an upload done before a crash) is where it went.
pub(super) async fn upload_to_free_name(
    store: &dyn ObjectStore,
    prefix: &Key,
    name: &str,
    copy: &LocalCopy<'_>,
) -> Result<Key, RemoteError> {
    for to in free_names(prefix, name) {
        match store.head(&to).await {
            Ok(there) if copy.is(store, &there).await? => return Ok(to),
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => return upload(store, &to, copy).await.map(|()| to),
            Err(e) => return Err(RemoteError::Store(e.to_string())),
        }
    }
    Err(no_free_name(prefix, name))
}

/// Streams the local copy to `to` in parts.
async fn upload(
    store: &dyn ObjectStore,
    to: &Key,
    copy: &LocalCopy<'_>,
) -> Result<(), RemoteError> {
    let failed = |e: StoreError| RemoteError::Store(format!("uploading to {to}: {e}"));
    let local = |e| RemoteError::Local(copy.path.to_path_buf(), e);
    let mut file = std::fs::File::open(copy.path).map_err(local)?;
    let upload = store.put_multipart(to).await.map_err(failed)?;
    let mut parts = WriteMultipart::new_with_chunk_size(upload, PART);
    let mut buf = vec![0u8; PART];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf).map_err(local)?;
        if n == 0 {
            break;
        }
        parts.wait_for_capacity(2).await.map_err(failed)?;
        parts.write(&buf[..n]);
    }
    parts.finish().await.map_err(failed)?;
    Ok(())
}

/// The part size of uploads (S3's minimum is 5 MiB).
const PART: usize = 8 * 1024 * 1024;

/// The local copy of an object that was loaded, to tell whether an object in the store holds
/// the same bytes: by size first, then (only if the sizes match) by content hash.
pub(super) struct LocalCopy<'a> {
    path: &'a Path,
}

impl<'a> LocalCopy<'a> {
    pub(super) fn new(path: &'a Path) -> LocalCopy<'a> {
        LocalCopy { path }
    }

    pub(super) async fn is(
        &self,
        store: &dyn ObjectStore,
        there: &ObjectMeta,
    ) -> Result<bool, RemoteError> {
        let size = std::fs::metadata(self.path)
            .map_err(|e| RemoteError::Local(self.path.to_path_buf(), e))?
            .len();
        if size != there.size {
            return Ok(false);
        }
        let got = match store.get(&there.location).await {
            Ok(g) => g,
            Err(StoreError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(RemoteError::Store(e.to_string())),
        };
        let mut hasher = blake3::Hasher::new();
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| RemoteError::Store(format!("reading {}: {e}", there.location)))?;
            hasher.update(&chunk);
        }
        let theirs = hasher.finalize().to_hex().to_string();
        Ok(crate::readiness::same_content(self.path, &theirs))
    }
}

/// The reasons the `rejected` prefix holds for `name` and its numbered copies
/// (`NAME.error.txt`, `NAME.1.error.txt`, …), in that order.
pub(super) async fn rejected_reasons(
    store: &dyn ObjectStore,
    rejected: &Key,
    name: &str,
) -> Result<Vec<String>, RemoteError> {
    let mut out = Vec::new();
    for (n, c) in archive_names(name).take(COPIES_LOOKED_UP).enumerate() {
        let at = rejected.clone().join(format!("{c}.error.txt").as_str());
        match store.get(&at).await {
            Ok(got) => {
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| RemoteError::Store(format!("reading {at}: {e}")))?;
                out.push(String::from_utf8_lossy(&bytes).trim_end().to_string());
            }
            // Copies are numbered without gaps: the first missing one after the name ends them.
            Err(StoreError::NotFound { .. }) if n > 0 => break,
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(RemoteError::Store(e.to_string())),
        }
    }
    Ok(out)
}

/// Writes `text` as the object `name` beside `at`.
pub(super) async fn put_text(
    store: &dyn ObjectStore,
    at: &Key,
    name: &str,
    text: &str,
) -> Result<(), RemoteError> {
    let parent: Key = at
        .parts()
        .take(at.parts().count().saturating_sub(1))
        .collect();
    store
        .put(
            &parent.clone().join(name),
            PutPayload::from(text.to_string()),
        )
        .await
        .map(|_| ())
        .map_err(|e| RemoteError::Store(e.to_string()))
}

/// Deletes `key`; one already gone is fine.
pub(super) async fn delete(store: &dyn ObjectStore, key: &Key) -> Result<(), RemoteError> {
    match store.delete(key).await {
        Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(RemoteError::Store(format!("deleting {key}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Azure lists `0x8DC…` and answers HEAD with `"0x8DC…"`: the same version. Taking them
    /// for two made every loaded object look replaced, so it stayed in the inbox for ever.
    #[test]
    fn e_tags_compare_without_their_quotes() {
        assert!(same_e_tag(Some("0x8DC1"), Some("\"0x8DC1\"")));
        assert!(same_e_tag(Some("W/\"abc\""), Some("abc")));
        assert!(!same_e_tag(Some("\"0x8DC1\""), Some("\"0x8DC2\"")));
        assert!(same_e_tag(None, Some("x")));
    }
}
