#!/usr/bin/env bash
# A real S3 API on 127.0.0.1 for tests: moto's server (PyPI `moto[server]`), which implements
# conditional writes (If-None-Match: *), what Delta's commits on S3 rely on.
#
#   scripts/s3-mock.sh start DIR     install (cached venv), start on a free port, create bucket
#                                    "lake"; prints `export` lines: eval "$(scripts/s3-mock.sh start DIR)"
#   scripts/s3-mock.sh stop DIR      stop it and wait until it has exited
#
# Environment: DELTADROP_CACHE (default ~/.cache/deltadrop; the venv is $DELTADROP_CACHE/venv),
# S3_MOCK_BUCKET (default lake). Only stdout carries the export lines; the rest goes to stderr.
set -euo pipefail

# Pinned: 5.2.5 answers a second If-None-Match: * put with 412 PreconditionFailed (checked here).
MOTO_VERSION=5.2.5
BOTO3_VERSION=1.44.8

cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}
venv="$cache/venv"
bucket=${S3_MOCK_BUCKET:-lake}

die() { echo "s3-mock.sh: $*" >&2; exit 1; }

install() {
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  if ! "$venv/bin/python" -c "import moto, boto3; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "moto[server]==$MOTO_VERSION" "boto3==$BOTO3_VERSION" >&2 || die "pip install moto failed"
  fi
}

cmd_start() {
  local dir=$1 port pid
  mkdir -p "$dir"
  install
  port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # setsid: its own session, so a signal to the caller's process group does not stop it mid-test.
  setsid "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$dir/moto.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/moto.pid"
  # Ready when the bucket can be created (polled with a deadline, not a fixed sleep).
  "$venv/bin/python" - "$port" "$bucket" <<'PY' || { kill "$pid" 2>/dev/null; cat "$dir/moto.log" >&2; die "moto did not start"; }
import sys, time
import boto3
port, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
deadline = time.time() + 30
while True:
    try:
        s3.create_bucket(Bucket=bucket)
        break
    except Exception:
        if time.time() > deadline:
            raise
        time.sleep(0.1)
PY
  cat <<EOF
export S3_MOCK_ENDPOINT=http://127.0.0.1:$port
export S3_MOCK_BUCKET=$bucket
export S3_MOCK_PID=$pid
EOF
}

cmd_stop() {
  local dir=$1 pid
  pid=$(cat "$dir/moto.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
  start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; cmd_start "$2" ;;
  stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; cmd_stop "$2" ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
