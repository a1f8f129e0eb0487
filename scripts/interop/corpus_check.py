"""Real third-party CSV files, loaded by deltadrop with `schema = "infer"`, compared value by value
with an independent reading: Python's csv module splits the file, Python's own converters turn
each field into the type deltadrop inferred (empty and null words are null).

    corpus_check.py DELTADROP_BINARY WORK_DIR CSV_FILE...

For each file: a fresh site, `deltadrop run --once`, then every row of the table against the
file. Fails (exit 1) on any row quarantined, any file rejected, any value that differs.
"""

import csv
import datetime as dt
import decimal
import json
import os
import shutil
import subprocess
import sys

from deltalake import DeltaTable

# Null tokens as deltadrop's defaults: `null_values` in every column, `typed_null_values` in typed
# ones (compared ignoring case).
NULLS = {"", "NULL", "null"}
TYPED_NULLS = {"nil", "na", "n/a", "#n/a", "none", "null", "-", "--"}
TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}


def chrono_to_python(fmt):
    return fmt  # chrono's %Y %m %d %H %M %S are strftime's


def expected(value, field):
    """The value deltadrop must have stored for the CSV field `value` in column `field`."""
    v = value.strip()
    t = str(field.type)
    typed = t != "string"
    if v in NULLS or (typed and v.lower() in TYPED_NULLS):
        return None
    fmt = (field.metadata or {}).get(b"deltadrop.format") or (field.metadata or {}).get(
        "deltadrop.format"
    )
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if t == "string":
        return value
    if t in ("int64", "int32"):
        return int(v)
    if t.startswith("decimal"):
        return decimal.Decimal(v)
    if t == "double":
        return float(v)
    if t == "bool":
        return v.lower() in TRUE
    if t.startswith("date32"):
        return dt.datetime.strptime(v, fmt or "%Y-%m-%d").date()
    if t.startswith("timestamp"):
        if fmt and fmt != "iso":
            d = dt.datetime.strptime(v, chrono_to_python(fmt))
        else:
            d = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.timezone.utc)
        return d.astimezone(dt.timezone.utc)
    raise ValueError(f"type {t} not checked")


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a.astimezone(dt.timezone.utc) == b.astimezone(dt.timezone.utc)
    return a == b


def check(binary, work, path):
    name = os.path.basename(path)
    site = os.path.join(work, name.replace(".", "_"))
    shutil.rmtree(site, ignore_errors=True)
    os.makedirs(os.path.join(site, "inbox"))
    with open(os.path.join(site, "config.toml"), "w") as f:
        f.write(
            '[http]\nenabled = false\n[[feed]]\nname = "corpus"\nschema = "infer"\n'
            'table = "lake/t"\nmaintenance_interval = "0s"\n'
        )
    shutil.copy(path, os.path.join(site, "inbox", name))
    run = subprocess.run(
        [binary, "run", "--once", "--config", "config.toml"],
        cwd=site,
        capture_output=True,
        text=True,
        env={**os.environ, "RUST_LOG": "info"},
    )
    log = run.stderr
    problems = []
    if run.returncode != 0:
        problems.append(f"exit {run.returncode}")
    if os.listdir(os.path.join(site, "rejected")):
        problems.append("rejected: " + open(
            os.path.join(site, "rejected", name + ".error.txt"), errors="replace"
        ).read().strip().splitlines()[-1])
        return problems, log
    q = DeltaTable(os.path.join(site, "lake", "_quarantine", "corpus")).to_pyarrow_table()
    if q.num_rows:
        first = q.to_pylist()[0]
        problems.append(
            f"{q.num_rows} row(s) quarantined; first: line {first['line_number']}: {first['error']}"
        )
    table = DeltaTable(os.path.join(site, "lake", "t")).to_pyarrow_table()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [r for r in reader if r]
    data_fields = [fl for fl in table.schema if not fl.name.startswith("_")]
    if len(rows) != table.num_rows:
        problems.append(f"{table.num_rows} rows in the table, {len(rows)} in the file")
        return problems, log
    if len(data_fields) != len(header):
        problems.append(f"{len(data_fields)} columns in the table, {len(header)} in the header")
        return problems, log
    got = table.to_pylist()
    bad = 0
    for i, (row, stored) in enumerate(zip(rows, got)):
        for field, value in zip(data_fields, row):
            want = expected(value, field)
            have = stored[field.name]
            if not same(want, have):
                bad += 1
                if bad <= 5:
                    problems.append(
                        f"row {i + 2}, column {field.name} ({field.type}): "
                        f"file {value!r} -> expected {want!r}, table has {have!r}"
                    )
    types = ", ".join(f"{fl.name} {fl.type}" for fl in data_fields)
    print(f"  {name}: {table.num_rows} rows x {len(data_fields)} columns ({types[:160]})")
    return problems, log


def main():
    binary, work, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    failed = 0
    total_rows = 0
    for path in files:
        problems, log = check(binary, work, path)
        if problems:
            failed += 1
            print(f"FAIL {os.path.basename(path)}:")
            for p in problems:
                print(f"    {p}")
            print("    log: " + "\n    log: ".join(log.strip().splitlines()[-8:]))
        else:
            with open(path, newline="", encoding="utf-8") as f:
                total_rows += sum(1 for r in csv.reader(f) if r) - 1
    print(
        json.dumps(
            {"files": len(files), "failed": failed, "rows_compared": total_rows}
        )
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
