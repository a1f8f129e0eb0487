#!/usr/bin/env python3
"""The sales table's schema as deltadrop writes it (`schema = "sales"` plus its two lineage columns),
for the benchmark's peers, so every contender writes the same table: exact decimals, UTC timestamps,
the same nullability. A peer that wrote strings or floats would do less work and win unfairly.

    python sales_schema.py check TABLE REFERENCE [--rows N]

compares TABLE's Delta schema with REFERENCE's (a table deltadrop wrote) and, with --rows, the row
count from the Add actions' statistics; exits 1 on a mismatch.
"""
import argparse
import json
import sys

# (name, Delta type, nullable), in deltadrop's column order. Read from a deltadrop-written table with
# python deltalake (DeltaTable(...).schema().to_json()); `check` keeps this list honest.
CSV_COLUMNS = [
    ("sale_id", "string", False),
    ("sold_at", "timestamp", False),
    ("store_id", "string", False),
    ("product_id", "string", False),
    ("quantity", "long", False),
    ("unit_price", "decimal(12,2)", False),
    ("total", "decimal(14,2)", False),
    ("payment_method", "string", False),
    ("customer_id", "string", True),
]
# deltadrop adds these to every row; the peers do the same work.
LINEAGE = [("_source_file", "string", False), ("_ingested_at", "timestamp", False)]
COLUMNS = CSV_COLUMNS + LINEAGE
# deltadrop's default null tokens (config.toml.example: null_values).
NULL_VALUES = ["", "NULL", "null"]


def arrow_type(delta_type):
    import pyarrow as pa

    if delta_type == "string":
        return pa.string()
    if delta_type == "long":
        return pa.int64()
    if delta_type == "timestamp":
        return pa.timestamp("us", tz="UTC")
    if delta_type.startswith("decimal("):
        p, s = delta_type[len("decimal(") : -1].split(",")
        return pa.decimal128(int(p), int(s))
    raise ValueError(delta_type)


def arrow_schema(columns=COLUMNS):
    import pyarrow as pa

    return pa.schema([pa.field(n, arrow_type(t), nullable=null) for n, t, null in columns])


def spark_struct(columns=COLUMNS):
    from pyspark.sql.types import _parse_datatype_string, StructField, StructType

    return StructType([StructField(n, _parse_datatype_string(t), null) for n, t, null in columns])


def delta_fields(table):
    from deltalake import DeltaTable

    schema = json.loads(DeltaTable(table).schema().to_json())
    return [(f["name"], f["type"], f["nullable"]) for f in schema["fields"]]


def table_rows(table):
    from deltalake import DeltaTable

    adds = DeltaTable(table).get_add_actions(flatten=True)
    return sum(v for v in adds.column("num_records").to_pylist() if v is not None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["check"])
    ap.add_argument("table")
    ap.add_argument("reference")
    ap.add_argument("--rows", type=int)
    args = ap.parse_args()
    got, want = delta_fields(args.table), delta_fields(args.reference)
    ok = True
    if got != want:
        print(f"schema differs from deltadrop's:\n  got  {got}\n  want {want}", file=sys.stderr)
        ok = False
    if want != COLUMNS:
        print(f"sales_schema.COLUMNS is stale; deltadrop writes {want}", file=sys.stderr)
        ok = False
    if args.rows is not None:
        n = table_rows(args.table)
        if n != args.rows:
            print(f"{args.table}: {n} rows, expected {args.rows}", file=sys.stderr)
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
