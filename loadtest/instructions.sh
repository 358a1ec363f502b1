#!/usr/bin/env bash
# Instructions a node executes per request, counted by callgrind: unlike
# time, the count repeats run after run on a noisy machine, so two builds
# compare to within a fraction of a percent. One node under valgrind, the
# same closed-loop load twice (SMALL and LARGE requests, 50 % PUTs of 500
# bytes); per request = (instructions of the large run - the small one) /
# (LARGE - SMALL), so start-up and idle work cancel out.
#   NODE_BIN=path  the node binary to count (default: this tree's)
#   SMALL=n LARGE=n  requests of the two runs (default 2000 and 12000)
#   NODE_ARGS="..."  extra node options (e.g. --data-dir DIR)
source "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 2; }
NODE_BIN="${NODE_BIN:-$B/dynakv}"
SMALL="${SMALL:-2000}"
LARGE="${LARGE:-12000}"
PORT=44390

instructions() { # requests -> total instructions of the node's run
    local requests="$1" servers="$OUT/instructions.txt" out="$OUT/callgrind.$1.out"
    echo "127.0.0.1:$PORT" >"$servers"
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --callgrind-out-file="$out" "$NODE_BIN" 127.0.0.1 $PORT "$servers" ${NODE_ARGS:-} \
        2>"$OUT/valgrind.$requests.log" &
    local pid=$!
    pids+=($pid)
    until "$B/dynakv" ctl --servers "$servers" ready >/dev/null 2>&1; do sleep 0.5; done
    "$B/dynakv-load" bench --servers "$servers" --clients 8 --requests "$requests" --duration-s 600 \
        --read-ratio 0.5 --value-bytes 500 --quiet >/dev/null
    "$B/dynakv" ctl --servers "$servers" shutdown 0 >/dev/null
    wait "$pid" || true
    awk '/Collected :/ { total = $4 } END { print total }' "$OUT/valgrind.$requests.log"
}

small="$(instructions "$SMALL")"
large="$(instructions "$LARGE")"
python3 - "$small" "$large" "$SMALL" "$LARGE" "$NODE_BIN" <<'PY'
import sys
small, large, n_small, n_large, node = sys.argv[1:]
per = (int(large) - int(small)) / (int(n_large) - int(n_small))
print(f"{node}: {per:,.0f} instructions per request ({small} and {large} for {n_small} and {n_large} requests)")
PY
