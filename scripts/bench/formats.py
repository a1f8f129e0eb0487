#!/usr/bin/env python3
"""Data and the Python routes for scripts/bench-formats.sh.

    python formats.py make-ndjson CSV_DIR OUT.ndjson TARGET_BYTES   # sales CSV rows as JSON lines
    python formats.py make-xlsx CSV OUT.xlsx ROWS                   # sales rows as a workbook
    python formats.py load-ndjson FILE TABLE                        # pyarrow.json + deltalake
    python formats.py load-xlsx-calamine FILE TABLE                 # python-calamine + deltalake
    python formats.py load-xlsx-pandas FILE TABLE                   # pandas/openpyxl + deltalake

Each load prints one JSON object: rows and seconds (process work from reading to the commit;
interpreter start-up and imports excluded: the route as a long-running script would run it).
The Python routes load the same typed columns deltadrop does: decimals for prices and totals,
UTC timestamps, strings.
"""
import csv
import decimal
import glob
import json
import os
import sys
import time


def sales_rows(csv_dir):
    for path in sorted(glob.glob(os.path.join(csv_dir, "*.csv"))):
        with open(path, newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            header = next(r)
            for row in r:
                yield header, row


def make_ndjson(csv_dir, out, target):
    written = 0
    with open(out, "w", encoding="utf-8") as f:
        while written < target:
            for header, row in sales_rows(csv_dir):
                obj = dict(zip(header, row))
                obj["quantity"] = int(obj["quantity"])
                # Prices as JSON numbers, as an ERP export writes them.
                obj["unit_price"] = json.loads(obj["unit_price"])
                obj["total"] = json.loads(obj["total"])
                obj["customer_id"] = obj["customer_id"] or None
                line = json.dumps(obj, ensure_ascii=False) + "\n"
                f.write(line)
                written += len(line.encode())
                if written >= target:
                    break


def make_xlsx(csv_path, out, rows):
    import datetime as dt
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Vendas")
    n = 0
    with open(csv_path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r)
        ws.append(header)
        for row in r:
            v = dict(zip(header, row))
            ws.append([
                v["sale_id"],
                dt.datetime.fromisoformat(v["sold_at"].replace("Z", "+00:00")).replace(tzinfo=None),
                v["store_id"], v["product_id"], int(v["quantity"]),
                float(v["unit_price"]), float(v["total"]), v["payment_method"], v["customer_id"] or None,
            ])
            n += 1
            if n >= rows:
                break
    wb.save(out)


def schema():
    import pyarrow as pa
    return pa.schema([
        ("sale_id", pa.string()), ("sold_at", pa.timestamp("us", tz="UTC")), ("store_id", pa.string()),
        ("product_id", pa.string()), ("quantity", pa.int64()), ("unit_price", pa.decimal128(12, 2)),
        ("total", pa.decimal128(14, 2)), ("payment_method", pa.string()), ("customer_id", pa.string()),
    ])


def write(table, path):
    from deltalake import write_deltalake
    write_deltalake(path, table, mode="append")


def load_ndjson(path, table_path):
    import pyarrow as pa
    import pyarrow.json as pj
    t0 = time.perf_counter()
    s = schema()
    # pyarrow's JSON reader parses the numbers straight into the decimals, the text into UTC
    # timestamps (multi-threaded, in blocks).
    t = pj.read_json(path, parse_options=pj.ParseOptions(explicit_schema=s))
    t = t.select(s.names)
    write(t, table_path)
    return t.num_rows, time.perf_counter() - t0


def to_table(header, rows):
    import datetime as dt
    import pyarrow as pa
    s = schema()
    cols = {h: [] for h in header}
    for row in rows:
        for h, v in zip(header, row):
            cols[h].append(v)
    out = []
    for f in s:
        vals = cols[f.name]
        if pa.types.is_decimal(f.type):
            q = decimal.Decimal(1).scaleb(-f.type.scale)
            vals = [None if v in (None, "") else decimal.Decimal(repr(v)).quantize(q) for v in vals]
        elif pa.types.is_timestamp(f.type):
            vals = [None if v in (None, "") else (v if isinstance(v, dt.datetime) else
                    dt.datetime.fromisoformat(str(v))).replace(tzinfo=dt.timezone.utc) for v in vals]
        elif pa.types.is_integer(f.type):
            vals = [None if v in (None, "") else int(v) for v in vals]
        else:
            vals = [None if v in (None, "") else str(v) for v in vals]
        out.append(pa.array(vals, f.type))
    return pa.Table.from_arrays(out, schema=s)


def load_xlsx_calamine(path, table_path):
    from python_calamine import CalamineWorkbook
    t0 = time.perf_counter()
    rows = CalamineWorkbook.from_path(path).get_sheet_by_index(0).to_python()
    t = to_table(rows[0], rows[1:])
    write(t, table_path)
    return t.num_rows, time.perf_counter() - t0


def load_xlsx_pandas(path, table_path):
    import pandas as pd
    t0 = time.perf_counter()
    df = pd.read_excel(path, engine="openpyxl", dtype=object)
    rows = [[None if (isinstance(v, float) and v != v) else v for v in r] for r in df.itertuples(index=False)]
    t = to_table(list(df.columns), rows)
    write(t, table_path)
    return t.num_rows, time.perf_counter() - t0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make-ndjson":
        make_ndjson(args[0], args[1], int(args[2]))
    elif cmd == "make-xlsx":
        make_xlsx(args[0], args[1], int(args[2]))
    else:
        fn = {"load-ndjson": load_ndjson, "load-xlsx-calamine": load_xlsx_calamine,
              "load-xlsx-pandas": load_xlsx_pandas}[cmd]
        rows, secs = fn(args[0], args[1])
        print(json.dumps({"rows": rows, "seconds": round(secs, 3)}), flush=True)
        os._exit(0)  # deltalake's teardown sometimes aborts at exit (python_read.py)


if __name__ == "__main__":
    main()
