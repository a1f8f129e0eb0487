//! The files tests drop: generated sales exports, fixtures from tests/data, the state a crash
//! leaves; and a replayable random generator.

use std::fs;
use std::path::Path;

use super::Dir;

pub const HEADER: &str =
    "sale_id,sold_at,store_id,product_id,quantity,unit_price,total,payment_method,customer_id";

/// `rows` rows of sales data; sale ids are `<tag>-<n>`, unique across tags.
pub fn sales_csv(tag: &str, rows: usize) -> String {
    let mut s = String::with_capacity(64 * (rows + 1));
    s.push_str(HEADER);
    s.push('\n');
    for i in 0..rows {
        let qty = 1 + (i % 5);
        let cents = 100 + (i * 37) % 9900;
        let customer = if i % 4 == 0 {
            String::new()
        } else {
            format!("C{}", i % 97)
        };
        s.push_str(&format!(
            "{tag}-{i},2024-03-{:02}T{:02}:{:02}:00Z,ST{},P{},{qty},{}.{:02},{}.{:02},{},{customer}\n",
            1 + i % 28,
            i % 24,
            i % 60,
            i % 7,
            i % 113,
            cents / 100,
            cents % 100,
            (cents * qty) / 100,
            (cents * qty) % 100,
            ["pix", "credit", "debit", "cash"][i % 4],
        ));
    }
    s
}

pub fn ids(tag: &str, rows: usize) -> Vec<String> {
    (0..rows).map(|i| format!("{tag}-{i}")).collect()
}

/// Writes the state a crash right before (or right after) a commit of inbox file `name` leaves.
pub fn write_intent(d: &Dir, name: &str, txn: i64, rows: u64) {
    let path = d.inbox().join(name);
    let content = fs::read(&path).expect("inbox file");
    let intent = serde_json::json!({
        "format": "1",
        "intent": {
            "app_id": "deltadrop-sales",
            "txn": txn,
            "files": [{
                "name": name,
                "path": path,
                "size": content.len(),
                "hash": blake3::hash(&content).to_hex().to_string(),
                "rows": rows
            }]
        }
    });
    fs::create_dir_all(d.path(".deltadrop/sales")).expect("state dir");
    fs::write(d.path(".deltadrop/sales/intent.json"), intent.to_string()).expect("intent");
}

/// Copies a file of tests/data into the inbox.
pub fn drop_fixture(d: &Dir, name: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    fs::create_dir_all(d.inbox()).expect("inbox");
    fs::copy(&src, d.inbox().join(name)).expect("copy fixture");
}

/// A tiny deterministic generator, so a failing random run can be replayed (no dependency for
/// this).
pub struct Lcg(pub u64);

impl Lcg {
    /// A number in `0..bound`.
    pub fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// `var` from the environment as a number, else `default`.
pub fn number_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
