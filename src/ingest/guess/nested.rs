//! The type of a JSON lines column whose values are objects or arrays: a struct of its
//! members' types (keys in the order first seen, over every object of the sample), or an array
//! of its elements' type — each member and element guessed as a column is, and nested again
//! when it is an object or array itself. A column that mixes objects with other values is
//! text (the JSON as written), never a struct that quarantines the rest.

use serde_json::value::RawValue;

use crate::config::ValueOptions;
use crate::schema::{members_of, ColType};

use super::super::json::{text_of, Keys, Object};
use super::{ColumnGuess, Decision};

/// Objects nested deeper are kept as their JSON text: a bound on the work one value can make.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, Default)]
pub(super) struct NestedGuess {
    objects: u64,
    arrays: u64,
    /// The keys as written (first-seen order), and per key the guess of its values.
    keys: Keys,
    members: Vec<ColumnGuess>,
    /// The guess of every array's elements.
    elements: Option<Box<ColumnGuess>>,
    depth: usize,
}

impl NestedGuess {
    /// Looks at a value that starts like JSON; false when it is not an object or an array.
    pub(super) fn add(&mut self, v: &str, opts: &ValueOptions) -> bool {
        if self.depth >= MAX_DEPTH {
            return false;
        }
        if v.starts_with('{') {
            let Ok(Object(pairs)) = serde_json::from_str::<Object>(v) else {
                return false;
            };
            self.objects += 1;
            for (pos, (k, value)) in pairs.into_iter().enumerate() {
                let i = self.keys.of(&k, pos);
                if i == self.members.len() {
                    let g = self.child(opts);
                    self.members.push(g);
                }
                add_value(&mut self.members[i], value, opts);
            }
            return true;
        }
        let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(v) else {
            return false;
        };
        self.arrays += 1;
        let mut elements = match self.elements.take() {
            Some(e) => e,
            None => Box::new(self.child(opts)),
        };
        for item in items {
            add_value(&mut elements, item, opts);
        }
        self.elements = Some(elements);
        true
    }

    fn child(&self, opts: &ValueOptions) -> ColumnGuess {
        let mut g = ColumnGuess::nested(opts);
        if let Some(n) = &mut g.nested {
            n.depth = self.depth + 1;
        }
        g
    }

    /// A struct when every value (`values` of them) was an object that had a member, an
    /// array when every one was an array; None otherwise.
    pub(super) fn decide(&self, values: u64, opts: &ValueOptions) -> Option<Decision> {
        let ty = if self.objects == values && !self.members.is_empty() {
            let members = self
                .keys
                .names()
                .iter()
                .zip(&self.members)
                .map(|(key, g)| {
                    let d = g.decide(opts);
                    (key.clone(), d.ty, d.format)
                })
                .collect();
            ColType::Struct(members_of(members).into())
        } else if self.arrays == values && self.arrays > 0 {
            let element = self
                .elements
                .as_ref()
                .map_or(ColType::String, |e| e.decide(opts).ty);
            ColType::List(element.into())
        } else {
            return None;
        };
        Some(Decision {
            ty,
            format: None,
            warning: None,
        })
    }
}

/// One member's or element's value shown to its guess, as the text a column would hold
/// (nulls and null tokens left out, as for a column).
fn add_value(g: &mut ColumnGuess, value: &RawValue, opts: &ValueOptions) {
    let Some(t) = text_of(value) else { return };
    let t = t.trim();
    if !t.is_empty() && !opts.null_values.iter().any(|n| n == t) {
        g.add(t, opts);
    }
}
