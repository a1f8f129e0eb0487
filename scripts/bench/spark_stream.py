#!/usr/bin/env python3
"""Spark Structured Streaming as the benchmark's Spark contender: what a Databricks-minded user would
run instead of deltadrop, on this machine (local[2]).

    python spark_stream.py stream --inbox DIR --table PATH --checkpoint DIR
    python spark_stream.py batch --csv FILE --table PATH

stream: readStream.csv(inbox) → writeStream.format("delta"), default trigger (micro-batches back to
        back, i.e. processingTime 0: the fastest). Prints "watching" on stderr once the query runs;
        SIGTERM stops it.
batch:  spark.read.csv(file) → write.format("delta").mode("append"); prints one JSON object with the
        job's seconds, timed from a ready session (JVM start-up is not counted: it is its own figure).

Needs scripts/lib/spark-env.sh sourced (spark_session.py on PYTHONPATH, the Delta jars). The session
has spark.sql.shuffle.partitions=2 and spark.databricks.delta.snapshotPartitions=2 (spark_session's
defaults, set again here so the benchmark says what it measured). The table is deltadrop's sales
schema (sales_schema.py): created with it at start if missing (version 0, as deltadrop does), NOT NULL
columns included; the CSV source reads the same decimals and UTC timestamps and adds the same
lineage columns.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

from sales_schema import COLUMNS, CSV_COLUMNS, spark_struct
from spark_session import spark_session

CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.session.timeZone": "UTC",
}


def ensure_table(spark, table):
    from delta.tables import DeltaTable

    # createIfNotExists on an existing table loads its snapshot: the same "open the table" work
    # deltadrop and the Python script do at start.
    (DeltaTable.createIfNotExists(spark).location(table).addColumns(spark_struct(COLUMNS)).execute())


def csv_reader(reader):
    # Spark's CSV source reads every column as nullable; the table's NOT NULL columns are checked
    # by Delta on write. Empty fields are null (deltadrop's null_values default includes "").
    return reader.schema(spark_struct(CSV_COLUMNS)).option("header", "true").option("mode", "FAILFAST")


def with_lineage(df):
    from pyspark.sql import functions as F

    return df.withColumn("_source_file", F.col("_metadata.file_name")).withColumn(
        "_ingested_at", F.current_timestamp()
    )


def stream(args):
    spark = spark_session("deltadrop-bench-stream", **CONF)
    ensure_table(spark, args.table)
    df = with_lineage(csv_reader(spark.readStream).csv(args.inbox))
    q = (
        df.writeStream.format("delta")
        .option("checkpointLocation", args.checkpoint)
        .outputMode("append")
        .start(args.table)
    )
    print("spark: watching", args.inbox, file=sys.stderr, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    while not done.wait(0.2):
        if not q.isActive:
            print(f"spark: query stopped: {q.exception()}", file=sys.stderr, flush=True)
            sys.exit(1)
    q.stop()
    spark.stop()


def batch(args):
    spark = spark_session("deltadrop-bench-batch", **CONF)
    ensure_table(spark, args.table)
    t0 = time.perf_counter()
    df = with_lineage(csv_reader(spark.read).csv(args.csv))
    df.write.format("delta").mode("append").save(args.table)
    secs = time.perf_counter() - t0
    json.dump({"seconds": round(secs, 3), "bytes": os.path.getsize(args.csv)}, sys.stdout)
    print(flush=True)
    spark.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["stream", "batch"])
    ap.add_argument("--inbox")
    ap.add_argument("--checkpoint")
    ap.add_argument("--csv")
    ap.add_argument("--table", required=True)
    args = ap.parse_args()
    stream(args) if args.mode == "stream" else batch(args)


if __name__ == "__main__":
    main()
