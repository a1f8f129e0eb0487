//! A producer's view of an object store (Azurite, the S3 API, or `file://`): objects uploaded
//! and listed under a prefix, through object_store as deltadrop reads them.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::logstore::object_store::path::Path as Key;
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// The objects under `base` (`az://lake/run-1234/`): `put("inbox", …)` uploads one.
pub struct Objects {
    rt: tokio::runtime::Runtime,
    store: Arc<dyn ObjectStore>,
    base: Key,
}

impl Objects {
    pub fn at(base: &url::Url, options: &HashMap<String, String>) -> Objects {
        deltalake::azure::register_handlers(None);
        deltalake::aws::register_handlers(None);
        let mut root = base.clone();
        root.set_path("/");
        let store = deltalake::DeltaTableBuilder::from_url(root)
            .expect("store url")
            .with_storage_options(options.clone())
            .build_storage()
            .expect("store")
            .object_store(None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Objects {
            rt,
            store,
            base: Key::from(base.path().trim_matches('/')),
        }
    }

    fn key(&self, prefix: &str, name: &str) -> Key {
        let mut k = self.base.clone();
        for part in prefix.split('/').filter(|p| !p.is_empty()) {
            k = k.join(part);
        }
        k.join(name)
    }

    /// Uploads `name` under `prefix` (one PUT: atomic, as the producers' uploads are).
    pub fn put(&self, prefix: &str, name: &str, content: &[u8]) {
        let key = self.key(prefix, name);
        self.rt
            .block_on(self.store.put(&key, PutPayload::from(content.to_vec())))
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }

    /// The names of the objects directly under `prefix` (not in its sub-prefixes), sorted.
    pub fn names(&self, prefix: &str) -> Vec<String> {
        let at = self.key(prefix, "x");
        let parent: Key = at.parts().take(at.parts().count() - 1).collect();
        let listed = self
            .rt
            .block_on(self.store.list_with_delimiter(Some(&parent)))
            .unwrap_or_else(|e| panic!("list {parent}: {e}"));
        let mut names: Vec<String> = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .collect();
        names.sort();
        names
    }
}

/// Storage options as the lines of a `[feed.storage_options]` block, sorted.
pub fn options_toml(options: &HashMap<String, String>) -> String {
    let mut opts: Vec<_> = options.iter().collect();
    opts.sort();
    opts.iter()
        .map(|(k, v)| format!("{k} = \"{v}\"\n"))
        .collect()
}
