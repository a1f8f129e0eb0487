# Generated sales data for the benchmarks (cached between runs) and the sites they run in, shared
# by scripts/bench.sh and scripts/bench-budget.sh so that both measure the same files.
#
#   log() { echo "NAME: $*" >&2; }        # the caller's; these functions report through it
#   source scripts/lib/bench-data.sh
#   bench_data_init "$cache" "$out"       # data under CACHE/bench-data; OUT: where files are staged
#   dir=$(data big 1 1390000 32)          # the folder holding 1 × 1,390,000-row files, seed 32
#   stage "$dir" "$site/staging" 1        # hard links (copies across file systems)
#   new_site "$site"; warm "$site"

bench_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# bench_data_init CACHE OUT: where data is generated, and whether OUT can hard-link to it.
bench_data_init() {
  data_root="$1/bench-data"
  mkdir -p "$data_root" "$2"
  # Files are hard-linked from the cache (same filesystem), so staging 100,000 files is quick and
  # the cache stays intact when contenders move them; copied where links cannot be made.
  link=-l
  touch "$data_root/.probe"
  ln "$data_root/.probe" "$2/.probe" 2>/dev/null || link=
  rm -f "$data_root/.probe" "$2/.probe"
}

# data NAME FILES ROWS SEED: prints the folder holding FILES × ROWS-row sales files.
data() {
  local dir="$data_root/$1-$2x$3-s$4"
  if [[ ! -f "$dir.done" ]]; then
    log "generating $2 × $3-row files ($1)"
    rm -rf "$dir"
    "$bench_lib_dir/../gen-sales.sh" -n "$2" -r "$3" -s "$4" -o "$dir" 2>/dev/null
    touch "$dir.done"
  fi
  echo "$dir"
}

# stage SRC DST COUNT [SKIP]: COUNT files of SRC (after the first SKIP, in name order) into DST.
stage() {
  mkdir -p "$2"
  # awk reads the whole list (head would end the pipe early, a SIGPIPE that pipefail turns into failure).
  find "$1" -maxdepth 1 -name '*.csv' -printf '%f\n' | sort | awk -v skip="${4:-0}" -v n="$3" 'NR > skip && NR <= skip + n' \
    | (cd "$1" && xargs -r cp $link -t "$2" --)
  local n
  n=$(find "$2" -maxdepth 1 -name '*.csv' | wc -l)
  [[ $n -eq $3 ]] || { log "staged $n files, wanted $3 (from $1)"; exit 1; }
}

# new_site DIR: an empty deltadrop site with the default config (the status port picked free, so
# nothing else on 9187 gets in the way). bench.sh's peers use its inbox/, processed/ and lake/sales too.
new_site() {
  rm -rf "$1"
  mkdir -p "$1/inbox" "$1/processed" "$1/staging"
  printf '[[feed]]\nname = "sales"\n\n[http]\nlisten = "127.0.0.1:0"\n' > "$1/config.toml"
}

# warm DIR: reads every file under DIR, so that what a contender reads is in the page cache.
# This VM's kernel reclaims cold page cache on its own (kdamond): a file generated minutes
# earlier was read from disk at ~45 MB/s, and a 1 GB run measured the disk, not the contender.
warm() {
  find "$1" -type f -print0 | xargs -0 -r cat > /dev/null
}
