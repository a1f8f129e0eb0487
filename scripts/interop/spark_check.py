#!/usr/bin/env python3
"""Reads the tables deltadrop wrote with Spark 4 + Delta and checks them against the input CSV files:
every row exactly once, Decimal (not float) prices, UTC timestamps to the microsecond, accents and
quotes, nulls; the quarantine table's one row; DESCRIBE HISTORY listing every version in _delta_log;
a protocol and table features Spark reads.

    spark_check.py TABLE QUARANTINE_TABLE CSV_DIR...

Run it in the environment of scripts/lib/spark-env.sh. Exits 1 with a message on the first mismatch.
Tables may be abfs:// URLs on the Azurite whose exports (scripts/azurite.sh) are in the environment;
the hadoop-azure jars must then be in DELTADROP_SPARK_JARS (deltadrop_spark_azure_jars).
"""
import datetime as dt
import decimal
import os
import sys

from python_read import expected_rows, parse_ts
from spark_session import spark_session

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# Table features Delta 4.4 on Spark 4.2 reads. deltadrop should need none of them (protocol 1/2), but a
# table that gains one (say, a timestamp_ntz column) must still be one Spark opens.
SPARK_READER_FEATURES = {"columnMapping", "deletionVectors", "timestampNtz", "typeWidening",
                         "typeWidening-preview", "v2Checkpoint", "vacuumProtocolCheck", "variantType",
                         "variantType-preview", "catalogOwned-preview", "catalogManaged"}


class Mismatch(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Mismatch(msg)


def micros(t):
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def azurite_conf():
    """Hadoop settings for abfs:// against the Azurite of scripts/azurite.sh: its blob endpoint over
    plain http, a flat namespace, Shared Key with the well-known account."""
    account = os.environ["AZURE_STORAGE_ACCOUNT_NAME"]
    return {
        "spark.hadoop.fs.azure.abfs.endpoint": f"127.0.0.1:{os.environ['AZURITE_PORT']}",
        "spark.hadoop.fs.azure.always.use.https": "false",
        "spark.hadoop.fs.azure.account.hns.enabled": "false",
        "spark.hadoop.fs.azure.fns.account.service.type": "BLOB",
        "spark.hadoop.fs.azure.account.auth.type": "SharedKey",
        f"spark.hadoop.fs.azure.account.key.{account}.dfs.core.windows.net": os.environ["AZURE_STORAGE_ACCOUNT_KEY"],
        "spark.hadoop.fs.azure.networking.library": "JDK_HTTP_URL_CONNECTION",
    }


def check_history(spark, path):
    hist = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("version", "operation").collect()
    versions = sorted(r.version for r in hist)
    if "://" not in path:
        log = os.path.join(path, "_delta_log")
        on_disk = sorted(int(f[:20]) for f in os.listdir(log) if f.endswith(".json") and f[:20].isdigit())
        check(versions == on_disk,
              f"{path}: DESCRIBE HISTORY shows versions {versions[:5]}…{versions[-5:]}, _delta_log has "
              f"{on_disk[:5]}…{on_disk[-5:]}")
    else:
        check(versions[0] == 0, f"{path}: history starts at version {versions[0]}, not 0")
    check(versions == list(range(versions[0], versions[-1] + 1)), f"{path}: history has gaps: {versions}")
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").collect()[0].asDict()
    reader, writer = detail["minReaderVersion"], detail["minWriterVersion"]
    features = set(detail.get("tableFeatures") or [])
    check(reader in (1, 2, 3) and 1 <= writer <= 7, f"{path}: protocol {reader}/{writer} is not one Delta 4 knows")
    if reader == 3:
        # Writer-only features do not stop a reader; the reader ones must all be known.
        unknown = features - SPARK_READER_FEATURES - {"appendOnly", "invariants", "checkConstraints",
                                                      "changeDataFeed", "generatedColumns", "identityColumns",
                                                      "domainMetadata", "rowTracking", "inCommitTimestamp",
                                                      "icebergCompatV1", "icebergCompatV2", "clustering"}
        check(not unknown, f"{path}: table features Spark does not know: {sorted(unknown)}")
    return versions[-1], f"protocol {reader}/{writer}" + (f" features {sorted(features)}" if features else "")


def check_sales(spark, path, want):
    from pyspark.sql import functions as F, types as T

    df = spark.read.format("delta").load(path)
    types = {f.name: f.dataType for f in df.schema.fields}
    check(types["unit_price"] == T.DecimalType(12, 2), f"unit_price is {types['unit_price']}, not decimal(12,2)")
    check(types["total"] == T.DecimalType(14, 2), f"total is {types['total']}, not decimal(14,2)")
    # TimestampType is an instant (UTC); timestamp_ntz would be a wall-clock time with no zone.
    check(types["sold_at"] == T.TimestampType(), f"sold_at is {types['sold_at']}, not timestamp")
    check(types["quantity"] in (T.LongType(), T.IntegerType()), f"quantity is {types['quantity']}")
    # unix_micros is zone-free, so the comparison cannot pass by two zone shifts cancelling out; the text
    # rendering then proves the session zone is UTC as configured.
    rows = df.select(
        "*",
        F.unix_micros("sold_at").alias("_sold_us"),
        F.date_format("sold_at", "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX").alias("_sold_txt"),
    ).collect()
    ids = [r.sale_id for r in rows]
    check(len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate sale_id(s) in the table")
    missing, extra = set(want) - set(ids), set(ids) - set(want)
    check(not missing and not extra,
          f"rows differ: {len(rows)} read, {len(want)} expected; missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}")
    cent = decimal.Decimal("0.01")
    for r in rows:
        w = want[r.sale_id]
        for col in ("unit_price", "total"):
            v = getattr(r, col)
            check(isinstance(v, decimal.Decimal), f"{r.sale_id}.{col} came back as {type(v).__name__}, not Decimal")
            check(v == decimal.Decimal(w[col]).quantize(cent), f"{r.sale_id}.{col}: Spark {v}, CSV {w[col]}")
        check(r.quantity == int(w["quantity"]), f"{r.sale_id}.quantity: Spark {r.quantity}, CSV {w['quantity']}")
        t = parse_ts(w["sold_at"])
        check(r._sold_us == micros(t), f"{r.sale_id}.sold_at: Spark {r._sold_txt}, CSV {w['sold_at']} = {t.isoformat()}")
        check(r._sold_txt == t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
              f"{r.sale_id}.sold_at renders as {r._sold_txt}: session time zone is not UTC")
        check(r.customer_id == (w["customer_id"] or None), f"{r.sale_id}.customer_id: Spark {r.customer_id!r}, CSV {w['customer_id']!r}")
        for col in ("payment_method", "store_id", "product_id"):
            check(getattr(r, col) == w[col], f"{r.sale_id}.{col}: Spark {getattr(r, col)!r}, CSV {w[col]!r}")
        check(r._source_file == w["_source_file"], f"{r.sale_id}._source_file: {r._source_file} vs {w['_source_file']}")
        check(r._ingested_at is not None, f"{r.sale_id}._ingested_at is null")
    # Spark's own aggregate over the decimals: exact, so equal to the CSV sum to the cent.
    spark_sum = df.agg(F.sum("total")).collect()[0][0]
    csv_sum = sum(decimal.Decimal(w["total"]) for w in want.values())
    check(isinstance(spark_sum, decimal.Decimal) and spark_sum == csv_sum, f"sum(total): Spark {spark_sum!r}, CSV {csv_sum}")
    nulls = sum(1 for r in rows if r.customer_id is None)
    return len(rows), nulls, spark_sum


def check_quarantine(spark, path):
    rows = [r.asDict() for r in spark.read.format("delta").load(path).collect()]
    check(len(rows) == 1, f"quarantine: {len(rows)} rows, expected 1: {rows}")
    r = rows[0]
    check((r["source_file"], r["line_number"], r["column"]) == ("bad-row.csv", 2, "unit_price"), f"quarantine row: {r}")
    check(r["error"] == "'12.3x' is not a decimal(12,2): not a number", f"quarantine error: {r['error']!r}")
    check(r["raw_line"].startswith("Q-1,"), f"quarantine raw_line: {r['raw_line']!r}")
    return len(rows)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    table, quarantine, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    want = expected_rows(dirs)
    conf = {"spark.sql.session.timeZone": "UTC"}
    if table.startswith("abfs"):
        conf.update(azurite_conf())
    spark = spark_session("deltadrop-spark-check", **conf)
    spark_version = spark.version
    try:
        n, nulls, total = check_sales(spark, table, want)
        version, proto = check_history(spark, table)
        q = check_quarantine(spark, quarantine)
        qversion, qproto = check_history(spark, quarantine)
    except Mismatch as e:
        print(f"spark-check: MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if "://" in table:
            # Close the cached abfs:// filesystems now, while the store is up: left to the JVM's
            # exit hook, they outlive the Azurite the check stops and time out with a stack trace.
            spark._jvm.org.apache.hadoop.fs.FileSystem.closeAll()
        spark.stop()
    print(f"spark {spark_version}{' on ' + table if '://' in table else ''}: sales {n} rows ({nulls} null customer_id, sum(total) {total}), "
          f"{version + 1} versions in history, {proto}; quarantine {q} row, {qversion + 1} versions, {qproto}: OK")


if __name__ == "__main__":
    main()
