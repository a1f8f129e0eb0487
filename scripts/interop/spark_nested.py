"""Spark reads the tables of scripts/interop/nested-site.sh: JSON lines objects and arrays that
deltadrop stored as Delta structs and arrays, members typed (a date, a decimal, a long) — with
Spark-safe names, or (`original`) every name as written through column mapping, nested ones
too — and Spark's own SQL reaches into them (a member by name, `transform`, `aggregate`).

    spark_nested.py TABLE [original]
"""
import datetime as dt
import decimal
import sys

from pyspark.sql import types as T

from spark_session import spark_session


def main():
    table = sys.argv[1]
    original = sys.argv[2:] == ["original"]
    city = "Cidade Natal" if original else "cidade_natal"
    spark = spark_session("deltadrop-spark-nested")
    try:
        df = spark.read.format("delta").load(table)
        s = df.schema
        customer = s["customer"].dataType
        want_members = ["name", city, "since", "score"]
        if not isinstance(customer, T.StructType) or customer.names != want_members:
            sys.exit(f"spark-nested: MISMATCH: customer is {customer}, expected members {want_members}")
        if customer["since"].dataType != T.DateType() or customer["score"].dataType != T.DecimalType(18, 2):
            sys.exit(f"spark-nested: MISMATCH: member types {customer}")
        items = s["items"].dataType
        if not (isinstance(items, T.ArrayType) and isinstance(items.elementType, T.StructType)
                and items.elementType.names == ["sku", "qty"]
                and items.elementType["qty"].dataType == T.LongType()):
            sys.exit(f"spark-nested: MISMATCH: items is {items}")
        if s["tags"].dataType != T.ArrayType(T.StringType(), True):
            sys.exit(f"spark-nested: MISMATCH: tags is {s['tags'].dataType}")
        rows = [tuple(r) for r in spark.sql(f"""
            SELECT `order`, customer.name, customer.`{city}`, customer.since, customer.score,
                   transform(items, i -> i.sku), aggregate(items, 0L, (a, i) -> a + coalesce(i.qty, 0L)),
                   tags
            FROM delta.`{table}` ORDER BY `order`""").collect()]
        want = [
            (1, "Ana", "Recife", dt.date(2024, 1, 2), decimal.Decimal("1.50"), ["A-1", "B-2"], 3, ["vip", "new"]),
            (2, 'Bia "B", Jr.', None, None, decimal.Decimal("2.00"), [], 0, None),
            (4, None, None, None, None, ["C-3", None], 5, None),
        ]
        if rows != want:
            sys.exit(f"spark-nested: MISMATCH: rows {rows}, expected {want}")
    finally:
        spark.stop()
    how = "names as written (column mapping, nested too)" if original else "Spark-safe names"
    print(f"spark {spark.version}: structs and arrays from JSON lines, {how}, members typed, SQL into them: OK")


if __name__ == "__main__":
    main()
