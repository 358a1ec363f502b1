#!/usr/bin/env bash
# Runs the DynamoDB conformance suite against dynalite, moto's server mode, or
# an endpoint already running (a URL, or several separated by commas).
#
#   tests/dynamodb/run-against.sh dynalite|moto|URL [pytest arguments...]
#
# It installs what it needs into target/dynamodb-compare/ (a Python venv with
# boto3 and pytest, moto[server] for moto, npm's dynalite for dynalite),
# starts the server on a free loopback port, runs the suite, always stops the
# server it started (by its pid), and prints the pass/fail/error counts.
# Exit status: pytest's.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="${DYNAMODB_COMPARE_DIR:-$root/target/dynamodb-compare}"
readonly START_WAIT_TENTHS=300 # the server has 30 s to answer

if [ $# -lt 1 ]; then
    echo "usage: $0 dynalite|moto|URL[,URL...] [pytest arguments...]" >&2
    exit 2
fi
target=$1
shift
mkdir -p "$cache"

venv="$cache/venv"
python_deps() {
    # boto3 and pytest always; the extra packages the target needs.
    local stamp="$venv/.installed-$1"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    if [ ! -e "$stamp" ]; then
        shift
        "$venv/bin/pip" install --quiet --disable-pip-version-check boto3 pytest "$@"
        touch "$stamp"
    fi
}

free_port() {
    "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap stop_server EXIT INT TERM

wait_for_port() {
    local port=$1
    for _ in $(seq "$START_WAIT_TENTHS"); do
        if "$venv/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "the server exited before it listened; its log:" >&2
            cat "$cache/server.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "the server did not listen on port $port in time" >&2
    return 1
}

case "$target" in
dynalite)
    python_deps base
    if [ ! -x "$cache/node_modules/.bin/dynalite" ]; then
        (cd "$cache" && npm install --no-audit --no-fund --silent dynalite)
    fi
    port=$(free_port)
    # Tables become ACTIVE at once; this suite does not test the time a status lasts.
    node "$cache/node_modules/.bin/dynalite" --host 127.0.0.1 --port "$port" \
        --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$cache/server.log" 2>&1 &
    server_pid=$!
    wait_for_port "$port"
    endpoints="http://127.0.0.1:$port"
    ;;
moto)
    python_deps moto 'moto[server]'
    port=$(free_port)
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$cache/server.log" 2>&1 &
    server_pid=$!
    wait_for_port "$port"
    endpoints="http://127.0.0.1:$port"
    ;;
http://* | https://*)
    python_deps base
    endpoints=$target
    ;;
*)
    echo "unknown target $target: dynalite, moto or a URL" >&2
    exit 2
    ;;
esac

log="$cache/pytest-$(echo "$target" | tr -c 'a-zA-Z0-9' '_').log"
# With no test path among the arguments, the whole suite runs.
paths=("$here")
for arg in "$@"; do
    case "$arg" in
    -*) ;;
    *) if [ -e "${arg%%::*}" ]; then paths=(); fi ;;
    esac
done
set +e
DYNAKV_DYNAMODB_ENDPOINTS=$endpoints PYTHONDONTWRITEBYTECODE=1 \
    "$venv/bin/python" -m pytest "${paths[@]}" --rootdir "$here" -p no:cacheprovider -q -rfE "$@" 2>&1 |
    tee "$log"
status=${PIPESTATUS[0]}
set -e

summary=$(grep -E '[0-9]+ (passed|failed|errors?|skipped).* in [0-9.]+s' "$log" | tail -n 1 || true)
count() { echo "$summary" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
echo "$target: $(count passed) passed, $(count failed) failed, $(count error) errors, $(count skipped) skipped"
exit "$status"
