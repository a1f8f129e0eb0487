#!/usr/bin/env python3
"""A table whose rows deltadrop changed (corrections, upserts), read back with Python `deltalake`:

    corrections_check.py TABLE CSV_DIR...

- the table holds exactly python_read.latest_rows(CSV_DIRS): every sale once, with its latest values;
- its change data feed (DeltaTable.load_cdf from version 0) has inserts, deletes, update pre- and
  post-images, and replaying it (+1 insert/update_postimage, -1 delete/update_preimage) gives the table
  again, value by value.
"""
import collections
import decimal
import os
import sys

import pyarrow as pa
from deltalake import DeltaTable

from python_read import latest_rows


def key(r):
    return (r["sale_id"], decimal.Decimal(str(r["total"])).quantize(decimal.Decimal("0.01")))


def main():
    table, dirs = sys.argv[1], sys.argv[2:]
    want = latest_rows(dirs)
    dt = DeltaTable(table)
    got = dt.to_pyarrow_table(columns=["sale_id", "total", "_source_file"]).to_pylist()
    ids = [r["sale_id"] for r in got]
    assert len(ids) == len(set(ids)), "a sale is in the table twice"
    assert set(ids) == set(want), (len(ids), len(want), sorted(set(ids) ^ set(want))[:5])
    for r in got:
        w = want[r["sale_id"]]
        assert key(r) == key(w), (r, w["total"])
        assert r["_source_file"] == w["_source_file"], (r, w["_source_file"])

    # load_cdf hands back an Arrow stream (arro3): pyarrow reads it through the Arrow C interface.
    cdf = pa.RecordBatchReader.from_stream(dt.load_cdf(starting_version=0)).read_all().to_pylist()
    kinds = collections.Counter(r["_change_type"] for r in cdf)
    for k in ("insert", "delete", "update_preimage", "update_postimage"):
        assert kinds[k] > 0, f"no {k} in the change feed: {dict(kinds)}"
    replay = collections.Counter()
    for r in cdf:
        replay[key(r)] += -1 if r["_change_type"] in ("delete", "update_preimage") else 1
    replay = {k: n for k, n in replay.items() if n}
    assert all(n == 1 for n in replay.values()), [k for k, n in replay.items() if n != 1][:5]
    assert set(replay) == {key(r) for r in got}, "replaying the change feed does not give the table"
    print(f"python deltalake: corrections OK: {len(got)} rows = latest CSV versions, change feed "
          f"{dict(sorted(kinds.items()))} replays to the table", flush=True)


if __name__ == "__main__":
    main()
    os._exit(0)  # see python_read.py: skip a teardown that sometimes aborts
