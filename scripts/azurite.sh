#!/usr/bin/env bash
# A real Azurite (Azure Storage emulator, blob service only) on 127.0.0.1 for tests.
#
#   scripts/azurite.sh start DIR          install (cached), start, create the container, then
#                                         print `export` lines: eval "$(scripts/azurite.sh start DIR)"
#   scripts/azurite.sh env DIR            print the same export lines for an instance already running
#   scripts/azurite.sh list DIR [PREFIX]  list the container's blobs (size, name): handy when a test fails
#   scripts/azurite.sh fill DIR PREFIX N  upload N small blobs PREFIX/obj-000000.csv… (16 at a time):
#                                         a store already holding many objects, for benchmarks
#   scripts/azurite.sh stop DIR           stop it and wait until it has exited
#
# Environment:
#   DELTADROP_CACHE         cache root (default ~/.cache/deltadrop); azurite installs into $DELTADROP_CACHE/azurite
#   AZURITE_PORT            port to listen on (default: a free one picked at start)
#   AZURITE_CONTAINER       container to create (default: lake)
#   AZURITE_START_TIMEOUT   seconds to wait for it to answer (default: 60)
#   AZURITE_IN_MEMORY       1: keep blobs in memory (--inMemoryPersistence): for benchmarks that
#                           fill it with many blobs — on disk, Azurite's metadata saves make each
#                           upload slower as the count grows (10,000 a minute at first, 10,000 in
#                           7 minutes past 40,000); a restart then loses the blobs
#
# DIR holds the blob data (DIR/data), azurite.pid, azurite.port, azurite.container and
# azurite.log. Only stdout carries the export lines; all progress and errors go to stderr so
# that `eval "$(...)"` stays clean.
# Needs node/npm (for azurite itself) and python3 (standard library only: picking a port and
# the Shared Key signed requests), nothing from PyPI and no az CLI.
#
# Using it from object_store / deltalake (the emulator's URL cannot be a storage option):
#   AZURE_STORAGE_USE_EMULATOR=true makes object_store ignore azure_storage_endpoint and read the
#   blob URL from the process environment variable AZURITE_BLOB_STORAGE_URL (default port 10000);
#   it then also allows plain http and signs with the well-known devstoreaccount1 key.
#   Do not use the non-emulator form (azure_storage_endpoint=http://127.0.0.1:PORT/devstoreaccount1
#   + azure_allow_http): Azurite ignores the startFrom list parameter, which object_store sends
#   only outside emulator mode, and Delta's log listing then breaks from the third commit on
#   ("Invalid table version: 1").
set -euo pipefail

# Pinned exactly: 3.35.0 is the last release whose engines field accepts Node 20
# (3.36.0 and later want Node >= 21/22).
AZURITE_VERSION=3.35.0
# The well-known account and key every Azurite (and the old Storage Emulator) accepts;
# published in Microsoft's Azurite docs, so not a secret.
ACCOUNT=devstoreaccount1
ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}
prefix="$cache/azurite"
container=${AZURITE_CONTAINER:-lake}

say() { echo "azurite.sh: $*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  # The header comment is the usage text.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
}

# Install the pinned azurite once into the cache. A marker written only after a successful
# install means an interrupted npm run is redone, not trusted; flock serialises parallel
# starts that would otherwise run npm into the same prefix at once.
install_azurite() {
  local marker="$prefix/.installed-$AZURITE_VERSION"
  [[ -f "$marker" && -e "$prefix/node_modules/.bin/azurite-blob" ]] && return 0
  command -v npm >/dev/null || die "npm not found: azurite needs Node.js (>= 20) and npm"
  mkdir -p "$prefix"
  (
    if command -v flock >/dev/null; then flock 9; fi
    [[ -f "$marker" && -e "$prefix/node_modules/.bin/azurite-blob" ]] && exit 0
    say "installing azurite@$AZURITE_VERSION into $prefix (once)"
    # npm's chatter goes to a log shown only on failure: our stdout carries export lines only.
    if ! npm install --prefix "$prefix" --save-exact --no-audit --no-fund --loglevel=error \
      "azurite@$AZURITE_VERSION" >"$prefix/npm-install.log" 2>&1; then
      cat "$prefix/npm-install.log" >&2
      die "npm install azurite@$AZURITE_VERSION failed"
    fi
    touch "$marker"
  ) 9>"$cache/azurite.lock"
}

# Does something already accept connections on 127.0.0.1:PORT?
port_taken() {
  python3 -c 'import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

free_port() {
  # Bind port 0 and let the kernel choose; there is a small window before azurite binds it,
  # which start_once's caller covers by retrying with another port.
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Signed Blob REST calls with Python's standard library only (no pip, no az CLI, no
# curl/openssl quoting of HMAC input). Shared Key, path-style as Azurite wants it:
# the URL path starts with /ACCOUNT and the canonicalised resource is /ACCOUNT + that path.
#   blob_rest PORT create-container CONTAINER     -> 0 if created or already there
#   blob_rest PORT list CONTAINER PREFIX          -> "size<TAB>name" lines
#   blob_rest PORT put CONTAINER BLOB DATA [create] -> prints the HTTP status
#   blob_rest PORT fill CONTAINER PREFIX N        -> N blobs PREFIX/obj-NNNNNN.csv, 16 in flight
blob_rest() {
  python3 - "$ACCOUNT" "$ACCOUNT_KEY" "$@" <<'PY'
import base64, hashlib, hmac, sys, urllib.error, urllib.parse, urllib.request
import xml.etree.ElementTree as ET
from email.utils import formatdate

account, key, port, op = sys.argv[1:5]
args = sys.argv[5:]

def call(method, path, query, body=b"", headers=None):
    headers = dict(headers or {})
    if method == "PUT" and not any(k.lower() == "content-type" for k in headers):
        # urllib would add its own form Content-Type to a PUT body, unsigned: name one.
        headers["Content-Type"] = "application/octet-stream"
    headers["x-ms-date"] = formatdate(usegmt=True)
    headers["x-ms-version"] = "2021-12-02"
    url_path = f"/{account}/{path}"
    length = str(len(body)) if body else ""
    canon_headers = "".join(f"{k}:{v}\n" for k, v in sorted(
        (k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-ms-")))
    canon_res = f"/{account}{urllib.parse.quote(url_path)}"
    for k in sorted(query, key=str.lower):
        canon_res += f"\n{k.lower()}:{query[k]}"
    h = {k.lower(): v for k, v in headers.items()}
    to_sign = "\n".join([method, "", "", length, "", h.get("content-type", ""), "",
                         "", h.get("if-match", ""), h.get("if-none-match", ""), "", "",
                         canon_headers + canon_res])
    sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest())
    headers["Authorization"] = f"SharedKey {account}:{sig.decode()}"
    url = f"http://127.0.0.1:{port}{urllib.parse.quote(url_path)}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(url, data=body if method == "PUT" else None,
                                 method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

if op == "create-container":
    status, body = call("PUT", args[0], {"restype": "container"})
    if status in (201, 409):  # 409: ContainerAlreadyExists (a restart on the same DIR)
        sys.exit(0)
    sys.stderr.write(f"create container {args[0]}: HTTP {status}: {body[:500]!r}\n")
    sys.exit(1)
elif op == "list":
    marker = None
    while True:
        q = {"restype": "container", "comp": "list", "prefix": args[1]}
        if marker:
            q["marker"] = marker
        status, body = call("GET", args[0], q)
        if status != 200:
            sys.stderr.write(f"list {args[0]}: HTTP {status}: {body[:500]!r}\n")
            sys.exit(1)
        root = ET.fromstring(body)
        for b in root.iter("Blob"):
            print(f"{b.findtext('Properties/Content-Length')}\t{b.findtext('Name')}")
        marker = root.findtext("NextMarker")
        if not marker:
            break
elif op == "put":
    headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"}
    if len(args) > 3 and args[3] == "create":
        headers["If-None-Match"] = "*"
    status, _ = call("PUT", f"{args[0]}/{args[1]}", {}, args[2].encode(), headers)
    print(status)
elif op == "fill":
    from concurrent.futures import ThreadPoolExecutor
    container, prefix, n = args[0], args[1].strip("/"), int(args[2])
    headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"}
    def one(i):
        status, body = call("PUT", f"{container}/{prefix}/obj-{i:06d}.csv", {},
                            b"sale_id\nX-%d\n" % i, headers)
        if status != 201:
            raise SystemExit(f"put {i}: HTTP {status}: {body[:300]!r}")
    with ThreadPoolExecutor(16) as pool:
        for done, _ in enumerate(pool.map(one, range(n)), 1):
            if done % 10000 == 0:
                sys.stderr.write(f"azurite.sh: {done} of {n} blobs\n")
else:
    sys.exit(f"unknown op {op}")
PY
}

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# Is PID our azurite (and not a recycled pid now owned by something else)?
is_azurite() {
  alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q azurite-blob
}

print_env() {
  local dir=$1 port pid container
  port=$(cat "$dir/azurite.port")
  pid=$(cat "$dir/azurite.pid")
  container=$(cat "$dir/azurite.container")
  cat <<EOF
export AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:$port
export AZURE_STORAGE_USE_EMULATOR=true
export AZURE_STORAGE_ACCOUNT_NAME=$ACCOUNT
export AZURE_STORAGE_ACCOUNT_KEY='$ACCOUNT_KEY'
export AZURE_STORAGE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$ACCOUNT_KEY;BlobEndpoint=http://127.0.0.1:$port/$ACCOUNT;'
export AZURITE_CONTAINER=$container
export AZURITE_PORT=$port
export AZURITE_PID=$pid
EOF
}

# One attempt on one port: 0 = up with the container made, 1 = it died (port taken?),
# exits on timeout.
start_once() {
  local dir=$1 port=$2 pid deadline
  local bin="$prefix/node_modules/.bin/azurite-blob"
  : >"$dir/azurite.log"
  # A stale pid file would make the loop below watch the wrong process.
  rm -f "$dir/azurite.pid"
  # Without this check, a probe could be answered by *another* server on that port while
  # ours dies of EADDRINUSE, and we would hand out the other one's URL.
  if port_taken "$port"; then
    say "port $port is already in use"
    return 1
  fi
  # --disableTelemetry: otherwise azurite posts usage data to Application Insights (no
  # internet here: it only fills the log with DNS errors; anywhere else it leaks test runs).
  # setsid: its own session, so a Ctrl-C or a kill of the caller's process group does not hit
  # it halfway through a test; `stop` ends it. The wrapper writes its own pid ($$) and then
  # execs azurite, so the pid file names the azurite process itself. stdin/stdout/stderr
  # are all redirected: an inherited stdout would keep `eval "$(azurite.sh start DIR)"` waiting
  # for EOF forever.
  # Azurite refuses --location beside --inMemoryPersistence.
  local store=(--location "$dir/data")
  [[ ${AZURITE_IN_MEMORY:-0} == 1 ]] && store=(--inMemoryPersistence)
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/azurite.pid" \
    "$bin" --blobHost 127.0.0.1 --blobPort "$port" "${store[@]}" \
    --skipApiVersionCheck --loose --silent --disableTelemetry \
    </dev/null >>"$dir/azurite.log" 2>&1 &
  echo "$port" >"$dir/azurite.port"

  # The wrapper writes the pid file before anything else; wait for it first so that every
  # way out below knows which process to check or to kill.
  for _ in $(seq 1 50); do
    [[ -s "$dir/azurite.pid" ]] && break
    sleep 0.1
  done
  pid=$(cat "$dir/azurite.pid" 2>/dev/null || true)
  [[ -n "$pid" ]] || { say "azurite's pid file never appeared"; return 1; }
  # Poll with a deadline. Ready = our own process logged that it listens (so the answer
  # below cannot come from someone else's server that won a race for the port) and creating
  # the container succeeds (the request pipeline answers, auth included).
  deadline=$((SECONDS + ${AZURITE_START_TIMEOUT:-60}))
  while ((SECONDS < deadline)); do
    if ! alive "$pid"; then
      return 1
    fi
    if grep -q "successfully listens on http://127.0.0.1:$port" "$dir/azurite.log" &&
      blob_rest "$port" create-container "$container" 2>/dev/null; then
      alive "$pid" && return 0
      return 1
    fi
    sleep 0.2
  done
  say "azurite did not answer on 127.0.0.1:$port within ${AZURITE_START_TIMEOUT:-60}s; log $dir/azurite.log:"
  tail -n 20 "$dir/azurite.log" >&2 || true
  kill "$pid" 2>/dev/null || true
  rm -f "$dir/azurite.pid"
  exit 1
}

cmd_start() {
  local dir=$1 attempt port
  mkdir -p "$dir" "$cache"
  dir=$(cd "$dir" && pwd)
  command -v python3 >/dev/null || die "python3 not found"
  if [[ -f "$dir/azurite.pid" ]] && is_azurite "$(cat "$dir/azurite.pid")"; then
    die "already running in $dir (pid $(cat "$dir/azurite.pid")): run 'stop $dir' first, or 'env $dir'"
  fi
  install_azurite
  mkdir -p "$dir/data"
  # Remembered so that `env` and `list` name the container this instance was started with.
  echo "$container" >"$dir/azurite.container"
  # A fixed AZURITE_PORT gets one try; a picked port gets three, in case another process
  # took it between our probe and azurite's bind.
  for attempt in 1 2 3; do
    port=${AZURITE_PORT:-$(free_port)}
    if start_once "$dir" "$port"; then
      say "up on 127.0.0.1:$port (pid $(cat "$dir/azurite.pid")), container '$container'"
      print_env "$dir"
      return 0
    fi
    [[ -n "${AZURITE_PORT:-}" ]] && break
    say "attempt $attempt on port $port failed; retrying"
  done
  say "could not start azurite; log $dir/azurite.log:"
  tail -n 20 "$dir/azurite.log" >&2 || true
  rm -f "$dir/azurite.pid"
  exit 1
}

cmd_stop() {
  local dir=$1 pid deadline
  [[ -f "$dir/azurite.pid" ]] || { say "no $dir/azurite.pid: nothing to stop"; return 0; }
  pid=$(cat "$dir/azurite.pid")
  if ! is_azurite "$pid"; then
    say "pid $pid is not a running azurite: removing stale pid file"
    rm -f "$dir/azurite.pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  # It is not our child (setsid, and usually another shell started it), so `wait` cannot
  # be used: poll until the pid is gone, then insist with SIGKILL past the deadline.
  deadline=$((SECONDS + 15))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if alive "$pid"; then
    say "pid $pid ignored SIGTERM for 15s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$dir/azurite.pid"
  say "stopped (pid $pid)"
}

running_port() {
  local dir=$1
  [[ -f "$dir/azurite.pid" ]] && is_azurite "$(cat "$dir/azurite.pid")" ||
    die "no azurite running in $dir"
  cat "$dir/azurite.port"
}

[[ $# -ge 2 ]] || usage
cmd=$1
dir=$2
case "$cmd" in
  start) cmd_start "$dir" ;;
  stop) cmd_stop "$dir" ;;
  env | list | put | fill)
    # A plain assignment, not "$(...)" inside the call: a failing lookup must stop us here.
    port=$(running_port "$dir")
    # An explicit AZURITE_CONTAINER wins; otherwise the container this instance made.
    container=${AZURITE_CONTAINER:-$(cat "$dir/azurite.container")}
    case "$cmd" in
      env) print_env "$dir" ;;
      list) blob_rest "$port" list "$container" "${3:-}" ;;
      # Not in the usage text: one raw PUT (BLOB DATA [create]), `create` adding
      # If-None-Match: * -- prints the HTTP status; used to check put-if-absent by hand.
      put) blob_rest "$port" put "$container" "$3" "$4" "${5:-}" ;;
      fill) blob_rest "$port" fill "$container" "$3" "$4" ;;
    esac
    ;;
  *) usage ;;
esac
