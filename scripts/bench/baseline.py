#!/usr/bin/env python3
"""What a user would write instead of deltadrop: poll a folder, read each CSV with pyarrow, append
it with `deltalake.write_deltalake`, move the file away. The benchmark's Python contender.

    python baseline.py --inbox DIR --table PATH --processed DIR [--mode naive|batched]
                       [--poll-ms 1] [--once]

naive:   one write_deltalake (one Delta commit) per file, then the file is moved.
batched: every file present at a poll is read and appended in one write, then all are moved.
--once:  one poll, then exit (a cron job; used for the 1 GB throughput figure).

It writes deltadrop's sales schema (sales_schema.py): decimals, UTC timestamps, the same nullability,
plus the `_source_file` / `_ingested_at` lineage columns, so the comparison is like for like. The
table is created (empty, version 0) at start if missing, as deltadrop does. Prints "watching" on
stderr once ready. It is not exactly-once (a crash between the write and the move loads the file
twice): that is the usual script, and the guarantee deltadrop adds.
"""
import argparse
import datetime as dt
import os
import signal
import sys
import time

import pyarrow as pa
import pyarrow.csv as pv
from deltalake import DeltaTable, write_deltalake

from sales_schema import COLUMNS, CSV_COLUMNS, NULL_VALUES, arrow_schema

SCHEMA = arrow_schema(COLUMNS)
CSV_TYPES = {f.name: f.type for f in arrow_schema(CSV_COLUMNS)}
CONVERT = pv.ConvertOptions(
    column_types=CSV_TYPES,
    null_values=NULL_VALUES,
    # Without this an empty customer_id would be "" where deltadrop stores null.
    strings_can_be_null=True,
    include_columns=[n for n, _, _ in CSV_COLUMNS],
)

stopping = False


def on_term(*_):
    global stopping
    stopping = True


def read(path):
    # use_threads (the default) parses blocks of a large file on every core.
    t = pv.read_csv(path, convert_options=CONVERT)
    n = t.num_rows
    now = pa.scalar(dt.datetime.now(dt.timezone.utc), type=pa.timestamp("us", tz="UTC"))
    # pa.repeat builds the constant columns in C: a Python list would cost seconds on 14M rows.
    t = t.append_column("_source_file", pa.repeat(pa.scalar(os.path.basename(path)), n))
    t = t.append_column("_ingested_at", pa.repeat(now, n))
    # cast carries the non-nullable flags, so the table schema matches deltadrop's exactly.
    return t.cast(SCHEMA)


def ready_files(inbox):
    # Hidden names are uploads in progress (scripts/drop.sh copies to .NAME.tmp, then renames).
    with os.scandir(inbox) as it:
        return sorted(e.path for e in it if e.name.endswith(".csv") and not e.name.startswith("."))


def archive(paths, processed):
    for p in paths:
        os.rename(p, os.path.join(processed, os.path.basename(p)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inbox", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--processed", required=True)
    ap.add_argument("--mode", choices=["naive", "batched"], default="naive")
    # The best interval for latency: listing an empty folder costs microseconds.
    ap.add_argument("--poll-ms", type=float, default=1.0)
    ap.add_argument("--once", action="store_true")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    os.makedirs(args.processed, exist_ok=True)
    # mode="ignore": reuse the table if it exists (opening it, as deltadrop does at start).
    DeltaTable.create(args.table, schema=SCHEMA, mode="ignore", name="sales")
    print("baseline: watching", args.inbox, file=sys.stderr, flush=True)
    while not stopping:
        files = ready_files(args.inbox)
        if not files:
            if args.once:
                break
            time.sleep(args.poll_ms / 1000.0)
            continue
        if args.mode == "naive":
            for f in files:
                write_deltalake(args.table, read(f), mode="append")
                archive([f], args.processed)
                if stopping:
                    break
        else:
            tables = [read(f) for f in files]
            write_deltalake(args.table, pa.concat_tables(tables), mode="append")
            archive(files, args.processed)
        if args.once:
            break


if __name__ == "__main__":
    main()
