//! Opening a feed's tables for a pipeline: its table (created with the feed's columns, or with
//! a first file's for `schema = "infer"`, grown by columns earlier runs added) and its
//! quarantine table, each checked before anything is written.

use super::table::{
    check_writable_folder, grown_schema, named_as_table, open_existing, open_or_create,
    table_arrow_schema,
};
use super::{quarantine, runtime, DeltaError};
use crate::config::{FeedConfig, OnNewColumn};
use crate::schema::TableSchema;
use deltalake::DeltaTable;

/// A feed's tables, open and checked: what its committer and the workers write.
pub struct FeedTables {
    /// The runtime the tables were opened with; the committer drives them with it.
    pub rt: tokio::runtime::Runtime,
    pub table: DeltaTable,
    /// The data columns the feed writes (for `infer`: as fixed at table creation).
    pub schema: TableSchema,
    pub quarantine: DeltaTable,
}

impl FeedTables {
    /// The feed's tables if both exist (nothing is created), with the columns the feed writes.
    pub fn existing(feed: &FeedConfig) -> Result<Option<FeedTables>, DeltaError> {
        let rt = runtime()?;
        let options = &feed.storage_options;
        let Some(table) = rt.block_on(open_existing(&feed.table_url, options))? else {
            return Ok(None);
        };
        let Some(quarantine) = rt.block_on(open_existing(&feed.quarantine_url, options))? else {
            return Ok(None);
        };
        let arrow = table_arrow_schema(&table)?;
        let schema = if feed.infer {
            TableSchema::from_arrow(&arrow).map_err(|m| DeltaError::IncompatibleSchema {
                url: feed.table_url.to_string(),
                problems: vec![m],
            })?
        } else {
            named_as_table(grown_schema(&feed.schema, &arrow), &arrow)
        };
        Ok(Some(FeedTables {
            rt,
            table,
            schema,
            quarantine,
        }))
    }

    /// Opens (or creates) the feed's table and its quarantine table. A `schema = "infer"` feed
    /// without a table gets its columns from `first_schema` (a first file's); None from it
    /// means there is no such file yet: nothing is opened or created.
    pub fn open(
        feed: &FeedConfig,
        first_schema: impl FnOnce() -> Option<TableSchema>,
    ) -> Result<Option<FeedTables>, DeltaError> {
        let rt = runtime()?;
        let url = &feed.table_url;
        check_writable_folder(url)?;
        check_writable_folder(&feed.quarantine_url)?;
        let create = |schema: &TableSchema| {
            rt.block_on(open_or_create(
                url,
                &feed.storage_options,
                &feed.name,
                &schema.arrow(),
                &schema.partition_columns(),
                feed.mutable(),
            ))
        };
        let (table, schema) = if feed.infer {
            match rt.block_on(open_existing(url, &feed.storage_options))? {
                Some(t) => {
                    let arrow = table_arrow_schema(&t)?;
                    let schema = TableSchema::from_arrow(&arrow).map_err(|m| {
                        DeltaError::IncompatibleSchema {
                            url: url.to_string(),
                            problems: vec![m],
                        }
                    })?;
                    (t, schema)
                }
                None => {
                    let Some(schema) = first_schema() else {
                        return Ok(None);
                    };
                    (create(&schema)?, schema)
                }
            }
        } else {
            let mut schema = feed.schema.clone();
            if feed.on_new_column == OnNewColumn::Add {
                // Columns added by earlier runs are part of the table now.
                if let Some(t) = rt.block_on(open_existing(url, &feed.storage_options))? {
                    schema = grown_schema(&schema, &table_arrow_schema(&t)?);
                }
            }
            let table = create(&schema)?;
            let schema = named_as_table(schema, &table_arrow_schema(&table)?);
            (table, schema)
        };
        let quarantine = rt.block_on(open_or_create(
            &feed.quarantine_url,
            &feed.storage_options,
            &format!("{}_quarantine", feed.name),
            &quarantine::schema(),
            &[],
            false,
        ))?;
        Ok(Some(FeedTables {
            rt,
            table,
            schema,
            quarantine,
        }))
    }
}
