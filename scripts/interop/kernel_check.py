#!/usr/bin/env python3
"""Every table given, read by two readers that share no code — Delta Kernel Java
(scripts/interop/KernelRead.java, the Delta project's reference implementation) and Python
`deltalake` (delta-rs, the library deltadrop writes with) — must hold the same rows, value for
value, under the same schema. For scripts/interop-kernel.sh.

    python kernel_check.py JARS_DIR TABLE [TABLE...]

Values are compared in one canonical text form (KernelRead.java's header): integers and
decimals as written, doubles by value, dates as days and timestamps as microseconds since the
epoch, booleans true/false; structs and arrays as compact JSON text of those forms. Rows are
compared as multisets (a row twice must be twice in both).
"""
import collections
import json
import os
import subprocess
import sys

import pyarrow as pa
from deltalake import DeltaTable

HERE = os.path.dirname(os.path.abspath(__file__))


def kernel_rows(jars, table):
    run = subprocess.run(
        ["java", "-cp", os.path.join(jars, "*"), os.path.join(HERE, "KernelRead.java"), table],
        capture_output=True, text=True, encoding="utf-8",
    )
    if run.returncode != 0:
        err = [l for l in run.stderr.splitlines() if not l.startswith("SLF4J")]
        raise SystemExit(f"kernel: {table}: Delta Kernel Java failed (exit {run.returncode}):\n"
                         + "\n".join(err[:15]))
    out = run.stdout.splitlines()
    schema = [c.split(":", 1)[0] for c in out[0].removeprefix("#schema ").split("\t")]
    rows = [json.loads(line) for line in out[1:] if not line.startswith("#")]
    declared = int(out[-1].removeprefix("#rows "))
    assert declared == len(rows), (declared, len(rows))
    return schema, rows


def canonical_value(v, t):
    """One value's canonical text; a struct or list as compact JSON of its members' texts."""
    if v is None:
        return None
    if pa.types.is_struct(t):
        return json.dumps(
            {t.field(i).name: canonical_value(v[t.field(i).name], t.field(i).type)
             for i in range(t.num_fields)},
            separators=(",", ":"), ensure_ascii=False)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return json.dumps([canonical_value(x, t.value_type) for x in v],
                          separators=(",", ":"), ensure_ascii=False)
    if pa.types.is_timestamp(t):
        return str(pa.scalar(v, t).cast(pa.int64()).as_py())
    if pa.types.is_date32(t):
        return str(pa.scalar(v, t).cast(pa.int32()).as_py())
    if pa.types.is_boolean(t):
        return "true" if v else "false"
    if pa.types.is_floating(t):
        return repr(float(v))
    return str(v)


def canonical_column(col):
    t = col.type
    if pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        return [canonical_value(v, t) for v in col.to_pylist()]
    if pa.types.is_timestamp(t):
        return [None if v is None else str(v) for v in col.cast(pa.int64()).to_pylist()]
    if pa.types.is_date32(t):
        return [None if v is None else str(v) for v in col.cast(pa.int32()).to_pylist()]
    if pa.types.is_boolean(t):
        return [None if v is None else ("true" if v else "false") for v in col.to_pylist()]
    if pa.types.is_floating(t):
        return [None if v is None else repr(float(v)) for v in col.to_pylist()]
    return [None if v is None else str(v) for v in col.to_pylist()]


def python_table(table):
    dt = DeltaTable(table)
    if dt.protocol().min_reader_version >= 2:
        # deltalake 1.6.6's to_pyarrow_table reads the renamed columns of a column-mapped
        # table as nulls (its own such tables too); its DataFusion route maps them.
        from deltalake import QueryBuilder
        return pa.table(QueryBuilder().register("t", dt).execute("select * from t").read_all())
    return dt.to_pyarrow_table()


def python_rows(table):
    t = python_table(table)
    names = t.column_names
    cols = [canonical_column(t.column(n).combine_chunks()) for n in names]
    doubles = {f.name for f in t.schema if pa.types.is_floating(f.type)}
    return names, [dict(zip(names, vals)) for vals in zip(*cols)], doubles


def key(row, doubles):
    return json.dumps(
        {k: (repr(float(v)) if k in doubles and v is not None else v) for k, v in row.items()},
        sort_keys=True, ensure_ascii=False)


def main():
    jars, tables = sys.argv[1], sys.argv[2:]
    failed = False
    for table in tables:
        k_schema, k_rows = kernel_rows(jars, table)
        p_schema, p_rows, doubles = python_rows(table)
        name = os.path.join(*table.rstrip(os.sep).split(os.sep)[-3:])
        if not k_rows and not p_rows:
            # Two readers agreeing on nothing proves nothing: every table here has rows.
            print(f"kernel: {name}: no rows in either reader")
            failed = True
            continue
        if k_schema != p_schema:
            print(f"kernel: {name}: columns differ: kernel {k_schema}, deltalake {p_schema}")
            failed = True
            continue
        k = collections.Counter(key(r, doubles) for r in k_rows)
        p = collections.Counter(key(r, doubles) for r in p_rows)
        if k != p:
            only_k, only_p = list((k - p).elements())[:3], list((p - k).elements())[:3]
            print(f"kernel: {name}: rows differ ({len(k_rows)} vs {len(p_rows)}); only in kernel: "
                  f"{only_k}; only in deltalake: {only_p}")
            failed = True
            continue
        print(f"kernel: {name}: {len(k_rows)} rows × {len(k_schema)} columns, every value equal "
              f"in Delta Kernel Java and Python deltalake", flush=True)
    sys.stdout.flush()
    # deltalake's teardown sometimes aborts at exit (python_read.py): leave without it.
    os._exit(1 if failed else 0)


if __name__ == "__main__":
    main()
