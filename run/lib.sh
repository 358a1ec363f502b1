# Shared by run/start, run/stop and run/status: argument parsing, the
# binary, and how a node of the servers file is reached (directly when its
# host is this machine, over ssh otherwise).
#
# Environment:
#   DYNAKV_SSH        ssh command for remote hosts (default: ssh -o BatchMode=yes)
#   DYNAKV_SCP        scp command (default: scp -o BatchMode=yes)
#   DYNAKV_REMOTE_DIR directory on remote hosts (default: dynakv, under the login's home)
#   DYNAKV_SSH_HOSTS  hosts reached over ssh even if they are this machine
#                     (to exercise the ssh path on one machine)
#   DYNAKV_NODE_ARGS  extra options for every node (e.g. --memory-limit 64,
#                     --fsync always)
#   DYNAKV_DATA_ROOT  where each node keeps its data, one directory per node
#                     (default: OUTPUT/data locally, REMOTE_DIR/data on remote
#                     hosts); "none" runs the nodes in memory only
#   DYNAKV_CLUSTER_SECRET_FILE  the cluster secret (default: SERVERS_FILE.secret,
#                     created by run/start when missing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# .cargo/config.toml names the target, so release binaries live under it.
BIN="$ROOT/target/x86_64-unknown-linux-gnu/release/dynakv"
SSH="${DYNAKV_SSH:-ssh -o BatchMode=yes}"
SCP="${DYNAKV_SCP:-scp -o BatchMode=yes}"
REMOTE_DIR="${DYNAKV_REMOTE_DIR:-dynakv}"

SERVERS="servers.txt"
OUTPUT="output"

parse_args() {
    local positional=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --output) OUTPUT="$2"; shift 2 ;;
            -h|--help) echo "usage: $(basename "$0") [SERVERS_FILE] [--output DIR]"; exit 0 ;;
            *) positional+=("$1"); shift ;;
        esac
    done
    if [ ${#positional[@]} -gt 0 ]; then SERVERS="${positional[0]}"; fi
    [ -f "$SERVERS" ] || { echo "no servers file: $SERVERS" >&2; exit 2; }
    SERVERS="$(cd "$(dirname "$SERVERS")" && pwd)/$(basename "$SERVERS")"
    SECRET="${DYNAKV_CLUSTER_SECRET_FILE:-$SERVERS.secret}"
    mkdir -p "$OUTPUT"
    OUTPUT="$(cd "$OUTPUT" && pwd)"
}

# host:port lines of the servers file, blank and # lines skipped.
nodes() {
    grep -v '^[[:space:]]*\(#\|$\)' "$SERVERS" | tr -d ' \t\r' | sed '/^$/d'
}

# Every node run/start or run/reload started and recorded in the output
# dir, whatever the servers file lists now (HOST_PORT.pid -> HOST:PORT).
recorded_nodes() {
    local file base
    for file in "$OUTPUT"/*.pid; do
        [ -f "$file" ] || continue
        base="$(basename "$file" .pid)"
        echo "${base%_*}:${base##*_}"
    done
}

host_of() { echo "${1%:*}"; }
port_of() { echo "${1##*:}"; }
node_file() { echo "$OUTPUT/$(echo "$1" | tr ':/' '__')"; }
# The data directory option of a node (none with DYNAKV_DATA_ROOT=none).
data_args() { # node root
    local root="${DYNAKV_DATA_ROOT:-$2}"
    [ "$root" = none ] && return 0
    echo "--data-dir $root/$(echo "$1" | tr ':/' '__')"
}

is_local() {
    local host="$1"
    for forced in ${DYNAKV_SSH_HOSTS:-}; do
        [ "$forced" = "$host" ] && return 1
    done
    case "$host" in
        127.*|localhost|"$(hostname)") return 0 ;;
    esac
    local addr
    for addr in $(hostname -I 2>/dev/null || true); do
        [ "$addr" = "$host" ] && return 0
    done
    return 1
}

# Whether the node's recorded pid is a live dynakv process.
running() {
    local node="$1" file pid host
    file="$(node_file "$node")"
    [ -f "$file.pid" ] || return 1
    pid="$(cat "$file.pid")"
    host="$(host_of "$node")"
    if is_local "$host"; then
        [ -d "/proc/$pid" ] && grep -q dynakv "/proc/$pid/cmdline" 2>/dev/null
    else
        $SSH "$host" "test -d /proc/$pid && grep -q dynakv /proc/$pid/cmdline" 2>/dev/null
    fi
}

ctl() {
    "$BIN" ctl --servers "$SERVERS" --cluster-secret-file "$SECRET" "$@"
}

# Creates the cluster secret (32 random bytes, readable by its owner only)
# unless it exists.
ensure_secret() {
    [ -s "$SECRET" ] && return 0
    (umask 077 && head -c 32 /dev/urandom >"$SECRET.tmp.$$" && mv -n "$SECRET.tmp.$$" "$SECRET")
    rm -f "$SECRET.tmp.$$"
    echo "created the cluster secret $SECRET"
}

# Each node's DynamoDB endpoint, as "NODE HOST:PORT" lines: on its own host,
# the first port from DYNAKV_DYNAMODB_PORT (default 8000, DynamoDB Local's)
# up that no node of the servers file listens on and no earlier node took;
# a running node keeps the endpoint recorded when it started
# (OUTPUT/HOST_PORT.dynamodb). DYNAKV_DYNAMODB_PORT=none: no endpoints.
dynamodb_endpoints() {
    local base="${DYNAKV_DYNAMODB_PORT:-8000}" node host port file
    [ "$base" = none ] && return 0
    local -A taken=() kept=() next=()
    for node in $(nodes); do
        taken[$node]=1
        file="$(node_file "$node").dynamodb"
        if [ -f "$file" ] && running "$node"; then
            kept[$node]="$(cat "$file")"
            taken[${kept[$node]}]=1
        fi
    done
    for node in $(nodes); do
        if [ -n "${kept[$node]:-}" ]; then
            echo "$node ${kept[$node]}"
            continue
        fi
        host="$(host_of "$node")"
        port="${next[$host]:-$base}"
        while [ -n "${taken[$host:$port]:-}" ]; do port=$((port + 1)); done
        taken[$host:$port]=1
        next[$host]=$((port + 1))
        echo "$node $host:$port"
    done
}
