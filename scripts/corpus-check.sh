#!/usr/bin/env bash
# Real third-party CSV files — the datasets shipped inside the npm package vega-datasets and
# the PyPI package vega_datasets (airports, flights, weather, GitHub activity, zip codes...) —
# each loaded by deltadrop with `schema = "infer"` and compared value by value with Python's
# csv module (scripts/interop/corpus_check.py). Installs the packages into the cache.
#
#   scripts/corpus-check.sh [DELTADROP_BINARY]    (default: the debug build)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
bin=$(deltadrop_binary "$repo" "${1:-}")
cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}
venv="$cache/venv"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  deltalake==1.6.6 pyarrow==26.0.1 vega_datasets==0.9.0

corpus="$cache/corpus"
if [[ ! -f "$corpus/.done-3.2.1" ]]; then
  rm -rf "$corpus"; mkdir -p "$corpus/npm"
  (cd "$corpus/npm" && npm pack --silent vega-datasets@3.2.1 >/dev/null && tar xzf vega-datasets-3.2.1.tgz)
  touch "$corpus/.done-3.2.1"
fi
npm_data="$corpus/npm/package/data"
py_data=$("$venv/bin/python" -c 'import os, vega_datasets; print(os.path.join(os.path.dirname(vega_datasets.__file__), "_data"))')

files=()
for f in airports birdstrikes co2-concentration disasters flights-airport gapminder-health-income \
         github global-temp la-riots lookup_people population_engineers_hurricanes \
         seattle-weather-hourly-normals seattle-weather species stocks us-employment weather \
         windvectors zipcodes; do
  files+=("$npm_data/$f.csv")
done
for f in seattle-temps sf-temps; do
  files+=("$py_data/$f.csv")
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" "$here/interop/corpus_check.py" "$bin" "$work" "${files[@]}"
