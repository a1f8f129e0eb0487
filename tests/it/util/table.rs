//! Reading tables back as the tests check them: through the Delta log (only committed files
//! count), local or in the cloud, as typed sales rows, quarantine rows or displayed values.

use std::collections::HashMap;
use std::path::Path;

use deltalake::arrow::array::{
    Array, Decimal128Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub sale_id: String,
    pub sold_at: i64,
    pub store_id: String,
    pub product_id: String,
    pub quantity: i64,
    pub unit_price: i128,
    pub total: i128,
    pub payment_method: String,
    pub customer_id: Option<String>,
    pub source_file: String,
    pub ingested_at: i64,
}

/// The table at `url` (None if there is none yet).
pub fn open_at(url: &url::Url, options: &HashMap<String, String>) -> Option<deltalake::DeltaTable> {
    deltalake::azure::register_handlers(None);
    deltalake::aws::register_handlers(None);
    runtime()
        .block_on(deltalake::open_table_with_storage_options(
            url.clone(),
            options.clone(),
        ))
        .ok()
}

/// The latest version of the table at `url`, and the txn version of each app id in it.
pub fn txn_versions(
    url: &url::Url,
    options: &HashMap<String, String>,
    app_ids: &[String],
) -> (u64, Vec<Option<i64>>) {
    let t = open_at(url, options).expect("table");
    let rt = runtime();
    let txns = app_ids
        .iter()
        .map(|id| {
            rt.block_on(
                t.snapshot()
                    .expect("snapshot")
                    .transaction_version(t.log_store().as_ref(), id),
            )
            .expect("txn version")
        })
        .collect();
    (t.version().unwrap_or(0), txns)
}

pub fn table_version(dir: &Path) -> Option<u64> {
    let rt = runtime();
    rt.block_on(async {
        let url = url::Url::from_directory_path(dir).ok()?;
        let t = deltalake::open_table(url).await.ok()?;
        t.version()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Every row of the table at its latest version, read through the Delta log (so only
/// committed files count).
pub fn read_rows(dir: &Path) -> Vec<Row> {
    rows_of(read_batches(dir))
}

/// The same for a table at any URL, with its storage options (cloud credentials, endpoint).
pub fn read_rows_at(url: &url::Url, options: &HashMap<String, String>) -> Vec<Row> {
    rows_of(read_batches_at(url, options))
}

fn rows_of(batches: Vec<deltalake::arrow::record_batch::RecordBatch>) -> Vec<Row> {
    let mut rows = Vec::new();
    for b in batches {
        {
            let s = |name: &str| {
                b.column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                    .unwrap_or_else(|| panic!("string column {name}"))
            };
            let ts = |name: &str| {
                b.column_by_name(name)
                    .and_then(|c| {
                        c.as_any()
                            .downcast_ref::<TimestampMicrosecondArray>()
                            .cloned()
                    })
                    .unwrap_or_else(|| panic!("timestamp column {name}"))
            };
            let dec = |name: &str| {
                b.column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<Decimal128Array>().cloned())
                    .unwrap_or_else(|| panic!("decimal column {name}"))
            };
            let sale_id = s("sale_id");
            let sold_at = ts("sold_at");
            let store = s("store_id");
            let product = s("product_id");
            let qty = b
                .column_by_name("quantity")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
                .expect("quantity");
            let price = dec("unit_price");
            let total = dec("total");
            let pay = s("payment_method");
            let cust = s("customer_id");
            let src = s("_source_file");
            let ing = ts("_ingested_at");
            for i in 0..b.num_rows() {
                rows.push(Row {
                    sale_id: sale_id.value(i).to_string(),
                    sold_at: sold_at.value(i),
                    store_id: store.value(i).to_string(),
                    product_id: product.value(i).to_string(),
                    quantity: qty.value(i),
                    unit_price: price.value(i),
                    total: total.value(i),
                    payment_method: pay.value(i).to_string(),
                    customer_id: (!cust.is_null(i)).then(|| cust.value(i).to_string()),
                    source_file: src.value(i).to_string(),
                    ingested_at: ing.value(i),
                });
            }
        }
    }
    rows
}

/// sale_id → how many times it is in the table.
pub fn counts(rows: &[Row]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in rows {
        *m.entry(r.sale_id.clone()).or_insert(0) += 1;
    }
    m
}

/// Asserts every id in `expected` is present exactly once and nothing else is there.
pub fn assert_exactly_once(rows: &[Row], expected: &[String]) {
    let c = counts(rows);
    let dups: Vec<_> = c.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicated rows: {dups:?}");
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !c.contains_key(*id))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "missing rows: {missing:?}");
    assert_eq!(rows.len(), expected.len(), "unexpected extra rows");
}

/// A row of a feed's quarantine table.
#[derive(Debug, Clone, PartialEq)]
pub struct QRow {
    pub feed: String,
    pub source_file: String,
    pub file_hash: String,
    pub line_number: i64,
    pub raw_line: Option<String>,
    pub column: Option<String>,
    pub error: String,
}

/// The quarantine table's rows, sorted by file and line.
pub fn read_quarantine(dir: &Path) -> Vec<QRow> {
    quarantine_rows_of(read_batches(dir))
}

pub fn read_quarantine_at(url: &url::Url, options: &HashMap<String, String>) -> Vec<QRow> {
    quarantine_rows_of(read_batches_at(url, options))
}

fn quarantine_rows_of(batches: Vec<deltalake::arrow::record_batch::RecordBatch>) -> Vec<QRow> {
    let mut out = Vec::new();
    for b in batches {
        let s = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                .unwrap_or_else(|| panic!("string column {name}"))
        };
        let line = b
            .column_by_name("line_number")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
            .expect("line_number");
        let (feed, file, hash, raw, col, err) = (
            s("feed"),
            s("source_file"),
            s("file_hash"),
            s("raw_line"),
            s("column"),
            s("error"),
        );
        for i in 0..b.num_rows() {
            let opt = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
            out.push(QRow {
                feed: feed.value(i).to_string(),
                source_file: file.value(i).to_string(),
                file_hash: hash.value(i).to_string(),
                line_number: line.value(i),
                raw_line: opt(&raw),
                column: opt(&col),
                error: err.value(i).to_string(),
            });
        }
    }
    out.sort_by(|a, b| (&a.source_file, a.line_number).cmp(&(&b.source_file, b.line_number)));
    out
}

/// Every committed batch of the table at `dir`, as stored.
pub fn read_batches(dir: &Path) -> Vec<deltalake::arrow::record_batch::RecordBatch> {
    match url::Url::from_directory_path(dir) {
        Ok(url) => read_batches_at(&url, &HashMap::new()),
        Err(_) => vec![],
    }
}

/// Reads every committed data file through the table's own object store, so local and cloud
/// tables are read the same way. No table yet: no batches.
pub fn read_batches_at(
    url: &url::Url,
    options: &HashMap<String, String>,
) -> Vec<deltalake::arrow::record_batch::RecordBatch> {
    let Some(t) = open_at(url, options) else {
        return vec![];
    };
    let rt = runtime();
    rt.block_on(async {
        let paths: Vec<String> = t
            .snapshot()
            .map(|s| s.log_data().iter().map(|f| f.path().to_string()).collect())
            .unwrap_or_default();
        let store = t.object_store();
        let mut out = Vec::new();
        for p in paths {
            let location = deltalake::Path::parse(&p).expect("data file path");
            let got = store
                .get(&location)
                .await
                .expect("parquet file of a committed Add exists");
            let bytes = got.bytes().await.expect("parquet bytes");
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .expect("parquet")
                .build()
                .expect("reader");
            out.extend(reader.map(|b| b.expect("batch")));
        }
        out
    })
}

/// Every row of a table as column → displayed value (None for null), in no particular order.
pub fn table_rows(dir: &Path) -> Vec<std::collections::BTreeMap<String, Option<String>>> {
    use deltalake::arrow::util::display::array_value_to_string;
    let mut out = Vec::new();
    for b in read_batches(dir) {
        for i in 0..b.num_rows() {
            let mut row = std::collections::BTreeMap::new();
            for (f, c) in b.schema().fields().iter().zip(b.columns()) {
                let v = (!c.is_null(i)).then(|| array_value_to_string(c, i).expect("display"));
                row.insert(f.name().clone(), v);
            }
            out.push(row);
        }
    }
    out
}

/// Rows keyed by the value of `key`.
pub fn rows_by(
    dir: &Path,
    key: &str,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, Option<String>>> {
    table_rows(dir)
        .into_iter()
        .map(|r| (r[key].clone().expect("key column has no nulls"), r))
        .collect()
}

/// The Delta schema of a table, as (name, arrow type) pairs.
pub fn table_schema(dir: &Path) -> Vec<(String, String)> {
    read_batches(dir)
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A table's columns as readers see them, each with its physical name (the Parquet column):
/// under column mapping the two differ, without it they are the same.
pub fn logical_columns(dir: &Path) -> Vec<(String, String)> {
    let url = url::Url::from_directory_path(dir).expect("table dir");
    let t = open_at(&url, &HashMap::new()).expect("a table");
    let snapshot = t.snapshot().expect("snapshot");
    let schema = snapshot.schema();
    schema
        .fields()
        .map(|f| {
            let physical = match f.metadata.get("delta.columnMapping.physicalName") {
                Some(deltalake::kernel::MetadataValue::String(p)) => p.clone(),
                _ => f.name.clone(),
            };
            (f.name.clone(), physical)
        })
        .collect()
}

/// Every row keyed by the names readers see ([`logical_columns`]): the Parquet files are read
/// by physical name and mapped the way the Delta protocol says a reader must.
pub fn logical_rows(dir: &Path) -> Vec<std::collections::BTreeMap<String, Option<String>>> {
    let columns = logical_columns(dir);
    table_rows(dir)
        .into_iter()
        .map(|mut r| {
            columns
                .iter()
                .map(|(logical, physical)| {
                    // A column added later is not in the older files: null there.
                    let v = r.remove(physical).flatten();
                    (logical.clone(), v)
                })
                .collect()
        })
        .collect()
}
