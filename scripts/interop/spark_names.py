"""Spark reads a table whose columns deltadrop named from headers Spark could not use as they are
(spaces, parentheses): folded to Spark-safe names by default, or — with `original`, a table of
`column_names = "original"` — kept as written through Delta column mapping. An inferred
dd/MM/yyyy date column (its format kept in the column's metadata) and null words in a typed
column.

    spark_names.py TABLE [original]
"""
import datetime as dt
import decimal
import sys

from spark_session import spark_session

WANT = [
    (1, decimal.Decimal("1.50"), dt.date(2024, 2, 13), "ok"),
    (2, None, dt.date(2024, 3, 1), None),
    (3, decimal.Decimal("10.25"), dt.date(2024, 12, 31), "last, with a comma"),
]


def main():
    table = sys.argv[1]
    original = sys.argv[2:] == ["original"]
    want = (["Sale ID", "Unit Price (R$)", "Sold On", "Notes"] if original
            else ["sale_id", "unit_price__r$_", "sold_on", "Notes"])
    spark = spark_session("deltadrop-spark-names")
    try:
        df = spark.read.format("delta").load(table)
        names = [f.name for f in df.schema.fields if not f.name.startswith("_")]
        if names != want:
            sys.exit(f"spark-names: MISMATCH: columns {names}, expected {want}")
        rows = [tuple(r) for r in df.select(*[f"`{n}`" for n in names]).orderBy(f"`{names[0]}`").collect()]
        if rows != WANT:
            sys.exit(f"spark-names: MISMATCH: rows {rows}, expected {WANT}")
        # Spark's own SQL over the names as written.
        total = spark.sql(f"SELECT sum(`{names[1]}`) AS s FROM delta.`{table}`").collect()[0]["s"]
        if total != decimal.Decimal("11.75"):
            sys.exit(f"spark-names: MISMATCH: sum of {names[1]} = {total}")
        meta = df.schema[names[2]].metadata
        if meta.get("deltadrop.format") != "%d/%m/%Y":
            sys.exit(f"spark-names: MISMATCH: sold_on metadata {meta}")
    finally:
        spark.stop()
    how = "column names as written (column mapping)" if original else "folded column names"
    print(f"spark {spark.version}: {how} {names}, inferred dd/MM/yyyy dates, null words: OK")


if __name__ == "__main__":
    main()
