#!/usr/bin/env bash
# Interop check with a reader that shares no code with delta-rs: Delta Kernel Java (the Delta
# project's reference implementation of the protocol, io.delta:delta-kernel-defaults from Maven
# Central) reads every kind of table deltadrop writes, and each must hold the same rows, value
# for value, as Python `deltalake` reads (scripts/interop/kernel_check.py):
#   - append: 20 generated sales files and the edge cases, with its quarantine table;
#   - corrections: on_resend = "replace" + merge_key, two waves (removes, the change data feed);
#   - partitioned: partition_by = "date(sold_at)";
#   - names: column_names = "original" (Delta column mapping, name mode) with upserts by a
#     key named as written (so the change data feed too), headers such as `Valor Total (R$)`;
#   - formats: one inbox of a workbook (tests/data/vendas.xlsx), JSON lines with a nested object
#     and a bad line, and a Parquet file with int32 columns widened (format = "auto");
#   - nested: JSON lines whose objects and arrays are Delta structs and arrays, with Spark-safe
#     names and with every name as written through column mapping (scripts/interop/nested-site.sh).
# Why Delta Kernel Java and not DuckDB or polars: polars reads Delta through delta-rs itself, and
# DuckDB's delta extension is downloaded from DuckDB's own site, which this machine cannot reach;
# Kernel is on Maven Central and is what Delta's own connectors are built on.
#
#   scripts/interop-kernel.sh [DELTADROP_BINARY]    (default: target/debug/deltadrop)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
bin=$(deltadrop_binary "$repo" "${1:-}")
cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}
venv="$cache/venv"
kernel_version=4.0.0
jars="$cache/delta-kernel-$kernel_version"

[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check deltalake==1.6.6 pyarrow==26.0.1
command -v java >/dev/null || { echo "interop-kernel: java is not on PATH" >&2; exit 1; }
command -v mvn >/dev/null || { echo "interop-kernel: the Kernel jars are fetched with mvn, which is not on PATH" >&2; exit 1; }

if [[ ! -f "$jars/.complete" ]]; then
  pom=$(mktemp -d)
  cat > "$pom/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>deltadrop</groupId><artifactId>kernel-jars</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>io.delta</groupId><artifactId>delta-kernel-api</artifactId><version>$kernel_version</version></dependency>
    <dependency><groupId>io.delta</groupId><artifactId>delta-kernel-defaults</artifactId><version>$kernel_version</version></dependency>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-client-api</artifactId><version>3.4.1</version></dependency>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-client-runtime</artifactId><version>3.4.1</version></dependency>
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
    <version>3.8.1</version>
  </plugin></plugins></build>
</project>
EOF
  rm -rf "$jars"
  mvn -q -B -f "$pom/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$jars"
  rm -rf "$pom"
  touch "$jars/.complete"
fi

work=$(mktemp -d)
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
once() { (cd "$1" && RUST_LOG=warn "$bin" run --once --config config.toml); }

# Append, and its quarantine table.
"$here/interop/make-site.sh" "$bin" "$work/append" >/dev/null

# Corrections: two waves into a feed that replaces re-sent names and upserts by sale_id.
"$here/interop/corrections-waves.sh" "$work/fix"
printf '[http]\nenabled = false\n[[feed]]\nname = "sales"\non_resend = "replace"\nmerge_key = ["sale_id"]\n' \
  > "$work/fix/config.toml"
for wave in wave1 wave2; do
  mkdir -p "$work/fix/inbox"
  cp "$work/fix/$wave"/*.csv "$work/fix/inbox/"
  once "$work/fix"
done

# Partitioned by the UTC day of sold_at.
mkdir -p "$work/part/inbox"
"$here/gen-sales.sh" -n 4 -r 300 -s 41 -o "$work/part/inbox" 2>/dev/null
printf '[http]\nenabled = false\n[[feed]]\nname = "sales"\npartition_by = "date(sold_at)"\n' \
  > "$work/part/config.toml"
once "$work/part"

# Formats: a workbook, JSON lines and Parquet in one inbox, one table.
mkdir -p "$work/formats/inbox"
cp "$repo/tests/data/vendas.xlsx" "$work/formats/inbox/"
printf '%s\n' \
  '{"id": 10, "name": {"first": "Ana", "tags": ["a", "b"]}, "amount": 1.25, "sold_on": "2026-12-01"}' \
  '{"id": 11, "amount": 123456789.99, "qty": 3}' \
  '{"id": 12 broken' \
  '{"qty": 4, "id": 13, "name": "Zé \"Quote\", Jr."}' > "$work/formats/inbox/orders.ndjson"
"$venv/bin/python" - "$work/formats/inbox/exports.parquet" <<'PY'
import datetime as dt, sys
import pyarrow as pa, pyarrow.parquet as pq
t = pa.table({
    "id": pa.array([20, 21, 22], pa.int32()),
    "name": ["p", None, "r"],
    "amount": pa.array([0.1, 2.5, None], pa.float64()),
    "sold_on": pa.array([dt.date(2026, 12, 2), None, dt.date(2024, 2, 29)], pa.date32()),
    "qty": pa.array([1, 2, 3], pa.int32()),
})
pq.write_table(t, sys.argv[1], row_group_size=2)
PY
cat > "$work/formats/config.toml" <<'EOF'
[http]
enabled = false
[[feed]]
name = "mixed"
table = "lake/mixed"
format = "auto"
header_match = "insensitive"
columns = [
  { name = "codigo", type = "string" },
  { name = "data", type = "date" },
  { name = "hora_da_venda", type = "timestamp" },
  { name = "valores_unitario", type = "decimal(12,2)" },
  { name = "valores_total", type = "decimal(12,2)" },
  { name = "loja", type = "string" },
  { name = "id", type = "int64" },
  { name = "name", type = "string" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "sold_on", type = "date" },
  { name = "qty", type = "int64" },
]
EOF
once "$work/formats"

# The names people wrote: column mapping, upserted by a key named as written.
mkdir -p "$work/names/inbox"
cat > "$work/names/config.toml" <<'EOF'
[http]
enabled = false
[[feed]]
name = "vendas"
table = "lake/vendas"
column_names = "original"
locale = "pt-BR"
merge_key = ["Código do Produto"]
columns = [
  { name = "Código do Produto", type = "string", nullable = false },
  { name = "Valor Total (R$)", type = "decimal(12,2)" },
  { name = "Data da Venda", type = "date" },
  { name = "Observação", type = "string" },
]
EOF
printf 'Código do Produto;Valor Total (R$);Data da Venda;Observação\nP1;1.234,50;01/03/2024;"primeira; com ponto e vírgula"\nP2;20,00;02/03/2024;\n' \
  > "$work/names/inbox/vendas-1.csv"
once "$work/names"
printf 'Código do Produto;Valor Total (R$);Data da Venda;Observação\nP2;25,00;02/03/2024;corrigida\nP3;0,99;03/03/2024;nova\n' \
  > "$work/names/inbox/vendas-2.csv"
once "$work/names"

# Nested objects and arrays as structs and arrays, names folded and as written.
"$here/interop/nested-site.sh" "$bin" "$work/nested"

"$venv/bin/python" "$here/interop/kernel_check.py" "$jars" \
  "$work/nested/plain/lake/orders" "$work/nested/original/lake/orders" \
  "$work/nested/plain/lake/_quarantine/orders" \
  "$work/names/lake/vendas" \
  "$work/append/lake/sales" "$work/append/lake/_quarantine/sales" \
  "$work/fix/lake/sales" "$work/part/lake/sales" \
  "$work/formats/lake/mixed" "$work/formats/lake/_quarantine/mixed"

# The names as written, exactly, in the reader that shares no code with deltadrop's writer.
names=$(java -cp "$jars/*" "$here/interop/KernelRead.java" "$work/names/lake/vendas" 2>/dev/null)
want_schema=$'#schema Código do Produto:string\tValor Total (R$):Decimal(12, 2)\tData da Venda:date\tObservação:string\t'
want_row='{"Código do Produto":"P1","Valor Total (R$)":"1234.50","Data da Venda":"19783","Observação":"primeira; com ponto e vírgula"'
if [[ "$(head -1 <<<"$names")" != "$want_schema"* ]] || ! grep -qF "$want_row" <<<"$names" \
   || [[ "$(tail -1 <<<"$names")" != "#rows 3" ]]; then
  echo "kernel: names/lake/vendas: not the names and values as written:" >&2
  echo "$names" >&2
  exit 1
fi
echo "kernel: names/lake/vendas: columns 'Código do Produto', 'Valor Total (R\$)', 'Data da Venda', 'Observação' as written; P1 = 1234.50"
