#!/usr/bin/env python3
"""Waits until the gold table of scripts/spark_sales_report.py holds exactly the sales per store per
minute computed from the given CSV files, or a deadline passes.

    gold_check.py GOLD_TABLE CSV_DIR... [--deadline SECONDS] [--pid PID] [--label TEXT] [--corrections]

With --corrections the expected rows are the latest version of every row (python_read.latest_rows): a
file sent again under its name replaces what that name loaded, a row replaces the row of its sale_id.

The gold table is read with Python `deltalake`, not Spark: a poll costs milliseconds instead of a JVM
start, and it shows that a table Spark wrote (with MERGEs) reads back outside Spark too. Exits 1 with the
differences at the deadline, or as soon as PID (the Spark job) is gone.
"""
import argparse
import collections
import decimal
import os
import sys
import time

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from python_read import expected_rows, latest_rows, parse_ts


def expected(dirs, corrections=False):
    agg = collections.defaultdict(lambda: [0, 0, decimal.Decimal(0)])
    for r in (latest_rows(dirs) if corrections else expected_rows(dirs)).values():
        minute = parse_ts(r["sold_at"]).replace(second=0, microsecond=0)
        a = agg[(r["store_id"], minute)]
        a[0] += 1
        a[1] += int(r["quantity"])
        a[2] += decimal.Decimal(r["total"])
    return {k: tuple(v) for k, v in agg.items()}


def read_gold(path):
    try:
        rows = DeltaTable(path).to_pyarrow_table(columns=["store_id", "minute", "sales", "quantity", "total"]).to_pylist()
    except TableNotFoundError:
        return None
    got = {}
    for r in rows:
        key = (r["store_id"], r["minute"])
        if key in got:
            print(f"gold-check: MISMATCH: {key} appears twice in the gold table", file=sys.stderr)
            exit_now(1)
        got[key] = (r["sales"], r["quantity"], r["total"])
    return got


def diff(want, got):
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [(k, got[k], want[k]) for k in want if k in got and got[k] != want[k]]
    return missing, extra, wrong


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def exit_now(code):
    # deltalake 1.6.6 + pyarrow 26 abort at interpreter exit about one run in twenty ("terminate called
    # without an active exception": a native thread pool torn down while a worker lives, delta-rs #2184);
    # skipping the teardown keeps a passed check from exiting 134.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gold")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--deadline", type=float, default=180)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--label", default="gold")
    ap.add_argument("--corrections", action="store_true",
                    help="the feed replaces re-sent names and upserts by sale_id: expect the latest rows")
    args = ap.parse_args()
    want = expected(args.dirs, args.corrections)
    start = time.monotonic()
    got = None
    while True:
        got = read_gold(args.gold)
        if got == want:
            break
        if args.pid and not alive(args.pid):
            print(f"gold-check: {args.label}: the Spark job (pid {args.pid}) is gone", file=sys.stderr)
            break
        if time.monotonic() - start > args.deadline:
            print(f"gold-check: {args.label}: deadline of {args.deadline:.0f} s passed", file=sys.stderr)
            break
        time.sleep(0.5)
    if got != want:
        if got is None:
            print(f"gold-check: MISMATCH: {args.gold} is not a Delta table", file=sys.stderr)
        else:
            missing, extra, wrong = diff(want, got)
            print(f"gold-check: MISMATCH ({args.label}): {len(got)} store-minutes in gold, {len(want)} expected; "
                  f"missing {len(missing)} {missing[:3]}, extra {len(extra)} {extra[:3]}, "
                  f"wrong {len(wrong)} (gold, csv) {wrong[:3]}", file=sys.stderr)
        exit_now(1)
    sales = sum(v[0] for v in want.values())
    total = sum(v[2] for v in want.values())
    shared = sum(1 for v in want.values() if v[0] > 1)
    print(f"{args.label}: gold = CSV after {time.monotonic() - start:.1f} s: {len(want)} store-minutes "
          f"({shared} with >1 sale), {sales} sales, total {total}")
    exit_now(0)


if __name__ == "__main__":
    main()
