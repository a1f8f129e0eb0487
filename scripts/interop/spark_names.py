"""Spark reads a table whose columns deltadrop named from headers Spark could not use as they are
(spaces, parentheses: folded to Spark-safe names), with an inferred dd/MM/yyyy date column (its
format kept in the column's metadata) and null words in a typed column.

    spark_names.py TABLE
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
    spark = spark_session("deltadrop-spark-names")
    try:
        df = spark.read.format("delta").load(table)
        names = [f.name for f in df.schema.fields if not f.name.startswith("_")]
        if names != ["sale_id", "unit_price__r$_", "sold_on", "Notes"]:
            sys.exit(f"spark-names: MISMATCH: columns {names}")
        rows = [tuple(r) for r in df.select(*[f"`{n}`" for n in names]).orderBy("sale_id").collect()]
        if rows != WANT:
            sys.exit(f"spark-names: MISMATCH: rows {rows}, expected {WANT}")
        meta = df.schema["sold_on"].metadata
        if meta.get("deltadrop.format") != "%d/%m/%Y":
            sys.exit(f"spark-names: MISMATCH: sold_on metadata {meta}")
    finally:
        spark.stop()
    print(f"spark {spark.version}: folded column names {names}, inferred dd/MM/yyyy dates, null words: OK")


if __name__ == "__main__":
    main()
