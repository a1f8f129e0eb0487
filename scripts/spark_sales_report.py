#!/usr/bin/env python3
"""Spark as the downstream engine: sales per store per minute, kept up to date from deltadrop's table.

    spark_sales_report.py SALES_TABLE GOLD_TABLE CHECKPOINT_DIR [--trigger "2 seconds"] [--available-now]

Reads SALES_TABLE (written by deltadrop) as a Delta stream and maintains GOLD_TABLE, one row per
(store_id, minute): number of sales, sum of quantity and sum of total (decimal, exact to the cent).
When deltadrop can change the table's rows (corrections, upserts), the stream is its change data
feed and each change is applied with its sign, so the report follows corrections exactly.
Without --available-now it runs until SIGTERM/SIGINT, a micro-batch every --trigger; with it, it
processes what the table holds now and exits. Run it in the environment of scripts/lib/spark-env.sh.
This replaces the original PySpark project's job (watching a RAW folder of CSV files every 5 s):
deltadrop does the CSV → Delta part, Spark only aggregates.

Why foreachBatch + MERGE, not a streaming aggregation in complete mode:
- Each micro-batch is aggregated on its own and added to the gold rows it touches (MERGE: update
  existing minutes, insert new ones). Spark keeps no aggregation state, so a row arriving days late
  (a file dropped late) simply adds to its minute; complete mode would keep every (store, minute) in
  the state store forever and rewrite the whole gold table on every trigger.
- An additive MERGE replayed would count twice, and Spark replays the last batch after a crash between
  the MERGE commit and the checkpoint commit. Each MERGE therefore carries a Delta transaction id
  (spark.databricks.delta.write.txnAppId / txnVersion = the batch id): Delta skips a MERGE whose
  version for that app id is already in the gold table's log, so every sales row counts exactly once.
- The price of that choice: the gold table and the checkpoint belong together. A new checkpoint
  against an existing non-empty gold table would re-add everything from version 0, so this script
  refuses to start in that case (delete both, or neither).
"""
import argparse
import os
import signal
import sys
import time

from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.sql import types as T

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "interop"))
from spark_session import spark_session  # noqa: E402  (scripts/interop)

GOLD_SCHEMA = T.StructType([
    T.StructField("store_id", T.StringType(), False),
    T.StructField("minute", T.TimestampType(), False),
    T.StructField("sales", T.LongType(), False),
    T.StructField("quantity", T.LongType(), False),
    # sum() of decimal(14,2) is decimal(24,2): ten more integer digits, never rounded.
    T.StructField("total", T.DecimalType(24, 2), False),
    T.StructField("updated_at", T.TimestampType(), False),
])


def log(msg):
    print(f"sales-report: {msg}", file=sys.stderr, flush=True)


def hadoop_exists(spark, path):
    # Through Hadoop's FileSystem, so the check also holds for abfss:// or s3a:// locations.
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(p)


def wait_for_table(spark, path, seconds):
    # deltadrop creates its table when it starts; the report may well start first.
    deadline = time.monotonic() + seconds
    while not DeltaTable.isDeltaTable(spark, path):
        if time.monotonic() > deadline:
            raise SystemExit(f"sales-report: {path} is not a Delta table after {seconds} s")
        time.sleep(0.5)


def ensure_gold(spark, gold, checkpoint):
    if DeltaTable.isDeltaTable(spark, gold) and not hadoop_exists(spark, checkpoint.rstrip("/") + "/metadata"):
        if spark.read.format("delta").load(gold).limit(1).count():
            raise SystemExit(f"sales-report: {gold} has rows but {checkpoint} holds no stream: starting over "
                             "would count every sale twice. Delete both or restore the checkpoint.")
    builder = DeltaTable.createIfNotExists(spark).location(gold)
    for field in GOLD_SCHEMA.fields:
        builder = builder.addColumn(field.name, field.dataType, nullable=field.nullable)
    builder.execute()


def sales_changes(spark, path):
    """The sales table as a stream of signed rows: +1 for a row added, -1 for a row taken away.

    A table whose rows deltadrop can change (on_resend = "replace", merge_key) carries the change data
    feed: a correction arrives as the old rows (delete, update_preimage: -1) and the new ones (insert,
    update_postimage: +1), so each minute's sums stay exact. A plain stream of such a table would fail
    at the first commit that removes rows. An append-only table is streamed as it is, every row +1."""
    props = DeltaTable.forPath(spark, path).detail().collect()[0]["properties"] or {}
    if props.get("delta.enableChangeDataFeed", "false").lower() == "true":
        log("the table's rows can change: reading its change data feed")
        return (spark.readStream.format("delta").option("readChangeFeed", "true").load(path)
                .withColumn("sign", F.when(F.col("_change_type").isin("delete", "update_preimage"), -1)
                            .otherwise(1)))
    return spark.readStream.format("delta").load(path).withColumn("sign", F.lit(1))


def merge_batch(gold, app_id):
    def merge(batch, batch_id):
        per_minute = batch.groupBy("store_id", "minute").agg(
            F.sum("sign").alias("sales"),
            F.sum("quantity").alias("quantity"),
            F.sum("total").alias("total"),
        ).cache()
        try:
            n = per_minute.count()
            if n == 0:
                return
            session = batch.sparkSession
            session.conf.set("spark.databricks.delta.write.txnAppId", app_id)
            session.conf.set("spark.databricks.delta.write.txnVersion", str(batch_id))
            try:
                (DeltaTable.forPath(session, gold).alias("g")
                 .merge(per_minute.alias("b"), "g.store_id = b.store_id AND g.minute = b.minute")
                 # A minute whose every sale was taken back (a correction) leaves the report.
                 .whenMatchedDelete(condition="g.sales + b.sales = 0")
                 .whenMatchedUpdate(set={
                     "sales": "g.sales + b.sales",
                     "quantity": "g.quantity + b.quantity",
                     "total": "g.total + b.total",
                     "updated_at": "current_timestamp()",
                 })
                 .whenNotMatchedInsert(condition="b.sales != 0", values={
                     "store_id": "b.store_id", "minute": "b.minute", "sales": "b.sales",
                     "quantity": "b.quantity", "total": "b.total", "updated_at": "current_timestamp()",
                 })
                 .execute())
            finally:
                # Left set, they would make the next unrelated write in this session look applied already.
                session.conf.unset("spark.databricks.delta.write.txnAppId")
                session.conf.unset("spark.databricks.delta.write.txnVersion")
            log(f"batch {batch_id}: {n} store-minute(s) merged")
        finally:
            per_minute.unpersist()

    return merge


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sales_table")
    ap.add_argument("gold_table")
    ap.add_argument("checkpoint")
    ap.add_argument("--trigger", default="2 seconds", help='micro-batch interval (default "2 seconds")')
    ap.add_argument("--available-now", action="store_true", help="process what is there now, then stop")
    ap.add_argument("--app-id", default="deltadrop-sales-report", help="Delta txn app id of the gold MERGEs")
    ap.add_argument("--wait-for-table", type=float, default=120, metavar="SECONDS",
                    help="how long to wait for SALES_TABLE to exist (default 120)")
    args = ap.parse_args()

    stop = []
    # Python's default SIGTERM handling would kill the driver mid-batch; stopping the query instead lets
    # the batch thread end, and a MERGE cut short is replayed idempotently on the next start anyway.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stop.append(signum))

    spark = spark_session("deltadrop-sales-report", **{"spark.sql.session.timeZone": "UTC"})
    wait_for_table(spark, args.sales_table, args.wait_for_table)
    ensure_gold(spark, args.gold_table, args.checkpoint)

    sales = (sales_changes(spark, args.sales_table)
             .select("store_id", F.date_trunc("minute", "sold_at").alias("minute"), "sign",
                     (F.col("quantity") * F.col("sign")).alias("quantity"),
                     (F.col("total") * F.col("sign")).cast(T.DecimalType(14, 2)).alias("total")))
    writer = (sales.writeStream.queryName("sales_per_store_minute")
              .foreachBatch(merge_batch(args.gold_table, args.app_id))
              .option("checkpointLocation", args.checkpoint))
    writer = writer.trigger(availableNow=True) if args.available_now else writer.trigger(processingTime=args.trigger)
    query = writer.start()
    log(f"streaming {args.sales_table} → {args.gold_table} "
        f"({'available now' if args.available_now else 'every ' + args.trigger})")
    while query.isActive and not stop:
        query.awaitTermination(1)
    if query.isActive:
        log("stopping")
        query.stop()
    error = query.exception()
    spark.stop()
    if error is not None:
        log(f"query failed: {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
