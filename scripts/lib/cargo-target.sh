# Where cargo puts what it builds, for scripts that run the built binary: CARGO_TARGET_DIR, a
# `build.target-dir` in a .cargo/config, or ./target — as cargo itself resolves it.
#
#   source scripts/lib/cargo-target.sh
#   bin="$(cargo_target_dir "$repo")/release/deltadrop"

cargo_target_dir() { # $1: the repository
  local dir
  dir=$(cd "$1" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null) || dir=
  if [[ -z "$dir" ]]; then
    dir=${CARGO_TARGET_DIR:-target}
    [[ "$dir" == /* ]] || dir="$1/$dir"
  fi
  printf '%s\n' "$dir"
}

# The deltadrop binary a check runs: $2 if given, else the debug build (built if missing), as an
# absolute path.
deltadrop_binary() { # $1: the repository, $2: a binary (optional)
  local bin=${2:-$(cargo_target_dir "$1")/debug/deltadrop}
  [[ -x "$bin" ]] || (cd "$1" && cargo build --quiet)
  realpath "$bin"
}
