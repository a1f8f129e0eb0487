//! Claims: which daemon of a fleet reads an object. A claim is an object under the inbox's
//! `_deltadrop_claims/` prefix created only if absent, holding the claiming instance, when it
//! first claimed the object and until when the claim holds.

use deltalake::logstore::object_store::{
    Error as StoreError, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};

use super::object::RemoteError;
use super::Side;

#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    instance: String,
    since_ms: i64,
    until_ms: i64,
}

/// What claiming an object gave.
pub(super) enum Taken {
    /// Another daemon holds it.
    No,
    /// Ours: newly, or from an earlier run of this daemon (claimed first at `since_ms`).
    Fresh { since_ms: i64 },
    /// Ours now: `from` held it since `since_ms` and let its lease run out.
    Over { from: String, since_ms: i64 },
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn body(side: &Side, since_ms: i64) -> PutPayload {
    let c = Claim {
        instance: side.remote.instance.clone(),
        since_ms,
        until_ms: now_ms() + i64::try_from(side.remote.lease.as_millis()).unwrap_or(i64::MAX),
    };
    PutPayload::from(serde_json::to_vec(&c).unwrap_or_default())
}

fn err(e: StoreError) -> RemoteError {
    RemoteError::Store(e.to_string())
}

/// Claims `name` for this daemon.
pub(super) fn take(
    rt: &tokio::runtime::Runtime,
    side: &Side,
    name: &str,
) -> Result<Taken, RemoteError> {
    rt.block_on(async {
        let key = side.claims.clone().join(name);
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let now = now_ms();
        match side.store.put_opts(&key, body(side, now), create).await {
            Ok(_) => return Ok(Taken::Fresh { since_ms: now }),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(err(e)),
        }
        let got = match side.store.get(&key).await {
            Ok(g) => g,
            // Released between our create and our look: the next listing tries again.
            Err(StoreError::NotFound { .. }) => return Ok(Taken::No),
            Err(e) => return Err(err(e)),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got.bytes().await.map_err(err)?;
        // An unreadable claim (cut short) is treated as one whose lease is over.
        let held: Option<Claim> = serde_json::from_slice(&bytes).ok();
        let (from, since_ms) = match held {
            Some(c) if c.instance == side.remote.instance => {
                let _ = side.store.put(&key, body(side, c.since_ms)).await;
                return Ok(Taken::Fresh {
                    since_ms: c.since_ms,
                });
            }
            Some(c) if c.until_ms > now_ms() => return Ok(Taken::No),
            Some(c) => (c.instance, c.since_ms),
            None => ("an unknown daemon".to_string(), 0),
        };
        let update = PutOptions {
            mode: PutMode::Update(version),
            ..Default::default()
        };
        match side
            .store
            .put_opts(&key, body(side, since_ms), update)
            .await
        {
            Ok(_) => {}
            // Another daemon took it over first.
            Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
                return Ok(Taken::No)
            }
            // A store without conditional updates: overwrite (two daemons taking over the same
            // expired claim at once both load it; the table's log check below and the content
            // hash keep that to one commit in all but a race of a few milliseconds).
            Err(StoreError::NotImplemented { .. } | StoreError::NotSupported { .. }) => {
                side.store
                    .put(&key, body(side, since_ms))
                    .await
                    .map_err(err)?;
            }
            Err(e) => return Err(err(e)),
        }
        log::warn!(
            "feed {}: {name}: the claim of {from} ran out (a daemon stopped mid-file?): taken over",
            side.feed.name
        );
        Ok(Taken::Over { from, since_ms })
    })
}

/// The claim on `name` (first claimed at `since_ms`) holds for another lease.
pub(super) async fn renew(side: &Side, name: &str, since_ms: i64) -> Result<(), RemoteError> {
    side.store
        .put(&side.claims.clone().join(name), body(side, since_ms))
        .await
        .map(|_| ())
        .map_err(err)
}

/// Deletes this instance's claims whose object has left the inbox (`listed` holds what is
/// there): an earlier run of this daemon stopped between deleting an archived object and
/// letting its claim go. Another daemon's claims are left alone, even expired: without a
/// conditional delete, removing one could race a takeover of a new object of that name.
/// Returns whether the claims were looked at (a failure is logged and tried at the next pass).
pub(super) fn sweep(
    rt: &tokio::runtime::Runtime,
    side: &Side,
    listed: &std::collections::HashSet<String>,
) -> bool {
    let swept = rt.block_on(async {
        let claims = side.store.list_with_delimiter(Some(&side.claims)).await?;
        let mut n = 0;
        for c in claims.objects {
            let Some(name) = c.location.filename() else {
                continue;
            };
            if listed.contains(name) || side.staged.contains_key(name) {
                continue;
            }
            let held: Option<Claim> = match side.store.get(&c.location).await {
                Ok(g) => serde_json::from_slice(&g.bytes().await?).ok(),
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            if held.is_some_and(|h| h.instance == side.remote.instance) {
                match side.store.delete(&c.location).await {
                    Ok(()) | Err(StoreError::NotFound { .. }) => n += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok::<_, StoreError>(n)
    });
    match swept {
        Ok(0) => true,
        Ok(n) => {
            log::info!(
                "feed {}: {n} claim(s) of an earlier run whose objects had left the inbox let go",
                side.feed.name
            );
            true
        }
        Err(e) => {
            log::warn!("feed {}: looking at earlier claims: {e}", side.feed.name);
            false
        }
    }
}

/// The claim on `name` is let go (the object was archived, or is left for a later listing).
pub(super) async fn release(side: &Side, name: &str) -> Result<(), RemoteError> {
    super::object::delete(&*side.store, &side.claims.clone().join(name)).await
}
