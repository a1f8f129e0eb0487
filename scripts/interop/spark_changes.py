"""Spark reads a table whose rows deltadrop changed (corrections, upserts): the table and its change
data feed.

    spark_changes.py TABLE CSV_DIR...

The table must hold python_read.latest_rows(CSV_DIRS); `readChangeFeed` from version 0 must show
inserts, deletes and update pre/post-images, and replaying it (+1 insert/update_postimage,
-1 delete/update_preimage) must give the table again. `DESCRIBE HISTORY` names the operations.
"""
import collections
import decimal
import sys

from python_read import latest_rows
from spark_session import spark_session


def key(sale_id, total):
    return (sale_id, decimal.Decimal(str(total)).quantize(decimal.Decimal("0.01")))


def main():
    table, dirs = sys.argv[1], sys.argv[2:]
    want = {key(r["sale_id"], r["total"]) for r in latest_rows(dirs).values()}
    spark = spark_session("deltadrop-spark-changes")
    try:
        got = [key(r.sale_id, r.total) for r in spark.read.format("delta").load(table).select("sale_id", "total").collect()]
        if len(got) != len(set(got)) or set(got) != want:
            sys.exit(f"spark-changes: MISMATCH: table has {len(got)} rows, {len(want)} expected; "
                     f"differ: {sorted(set(got) ^ want)[:5]}")
        cdf = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0)
               .load(table).select("sale_id", "total", "_change_type").collect())
        kinds = collections.Counter(r._change_type for r in cdf)
        for k in ("insert", "delete", "update_preimage", "update_postimage"):
            if not kinds[k]:
                sys.exit(f"spark-changes: MISMATCH: no {k} in the change feed: {dict(kinds)}")
        replay = collections.Counter()
        for r in cdf:
            replay[key(r.sale_id, r.total)] += -1 if r._change_type in ("delete", "update_preimage") else 1
        replay = {k for k, n in replay.items() if n == 1} if all(n in (0, 1) for n in replay.values()) else None
        if replay != want:
            sys.exit("spark-changes: MISMATCH: replaying the change feed does not give the table")
        ops = [r.operation for r in spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()]
        if "MERGE" not in ops:
            sys.exit(f"spark-changes: MISMATCH: no MERGE in the history: {ops}")
        print(f"spark: corrections OK: {len(got)} rows = latest CSV versions; readChangeFeed "
              f"{dict(sorted(kinds.items()))} replays to the table; history {collections.Counter(ops)}",
              flush=True)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
