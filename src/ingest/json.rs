//! JSON values as deltadrop reads them: an object's members borrowed from its text, and a
//! value as the text the CSV path would have read. Shared by JSON lines files and by the
//! struct and array columns read from JSON text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// One JSON object's members, in the order written, each value as its raw JSON text, borrowed
/// from the line (only a key holding an escape is copied).
pub(super) struct Object<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

/// A key, borrowed from the line unless it holds an escape.
pub(super) struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Object<'de>, A::Error> {
                let mut members = Vec::with_capacity(m.size_hint().unwrap_or(16));
                while let Some((k, v)) = m.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((k.0, v));
                }
                Ok(Object(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// A value as the text the CSV path would have read, borrowed where it can be; None for JSON
/// null.
pub(super) fn text_of(v: &RawValue) -> Option<Cow<'_, str>> {
    let raw = v.get();
    match raw.as_bytes().first() {
        // A string without an escape is the text between its quotes.
        Some(b'"') if !raw.contains('\\') => Some(Cow::Borrowed(&raw[1..raw.len() - 1])),
        Some(b'"') => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
        Some(b'n') if raw == "null" => None,
        _ => Some(Cow::Borrowed(raw)),
    }
}

/// The keys of a run of objects, numbered in first-seen order. Objects usually repeat their
/// keys' order, so a key is first looked for at its own position, the index only when another
/// key is there.
#[derive(Debug, Clone, Default)]
pub(super) struct Keys {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Keys {
    /// The number of `key`, the `pos`-th key of its object; None if not seen yet.
    pub(super) fn find(&self, key: &str, pos: usize) -> Option<usize> {
        if self.names.get(pos).is_some_and(|n| n == key) {
            return Some(pos);
        }
        self.index.get(key).copied()
    }

    /// The number of `key`, the `pos`-th key of its object; a new key takes the next one.
    pub(super) fn of(&mut self, key: &str, pos: usize) -> usize {
        if let Some(i) = self.find(key, pos) {
            return i;
        }
        let i = self.names.len();
        self.names.push(key.to_string());
        self.index.insert(key.to_string(), i);
        i
    }

    /// The keys, in first-seen order.
    pub(super) fn names(&self) -> &[String] {
        &self.names
    }

    pub(super) fn into_names(self) -> Vec<String> {
        self.names
    }
}
