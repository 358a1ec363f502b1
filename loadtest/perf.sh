#!/usr/bin/env bash
# The per-request cost figures of docs/benchmarks.md, in one sitting: an
# echo server, one node (empty store and 1.2M keys), 5 nodes with random
# front-ends, 20 nodes at 128 clients. Prints markdown rows with the
# servers' CPU per request (read from /proc by dynakv-load).
#   NODE_BIN=path   the node binary to measure (default: this tree's)
#   DURATION=s      seconds per run (default 8)
#   CASES="..."     a subset of: echo one big five twenty
source "$(dirname "$0")/lib.sh"
DURATION="${DURATION:-8}"
NODE_BIN="${NODE_BIN:-$B/dynakv}"
CASES="${CASES:-echo one big five twenty}"
PORT=44300

row() { # label json
    python3 - "$@" <<'PY'
import json, sys
label, path = sys.argv[1:3]
r = json.load(open(path))
l = r["latency_us"]
cpu = r["server_cpu_us_per_request"]
cpu = f"{cpu:.2f}" if cpu is not None else "-"
print(f'| {label} | {r["throughput"]:.0f} | {l["p50"]/1000:.2f} | {l["p99"]/1000:.2f} | {cpu} | {r["retry_rate"]*100:.2f} % | {r["wrong_reads"]} |')
PY
}

cluster() { # n file [node options]
    local n="$1" file="$2"; shift 2
    for i in $(seq 0 $((n - 1))); do echo "127.0.0.1:$((PORT + i))"; done >"$file"
    for i in $(seq 0 $((n - 1))); do
        "$NODE_BIN" 127.0.0.1 $((PORT + i)) "$file" "$@" 2>"$file.$i.log" &
        pids+=($!)
    done
    until "$B/dynakv" ctl --servers "$file" ready >/dev/null 2>&1; do sleep 0.3; done
}

stop() { cleanup; pids=(); sleep 0.5; }

bench() { # label servers clients [options]
    local label="$1" servers="$2" clients="$3"; shift 3
    "$B/dynakv-load" bench --servers "$servers" --clients "$clients" --duration-s "$DURATION" --quiet \
        --json "$OUT/perf.json" "$@" >/dev/null
    row "$label" "$OUT/perf.json"
}

echo "| case | req/s | p50 ms | p99 ms | server CPU us/request | retries | wrong reads |"
echo "|---|---|---|---|---|---|---|"
for case in $CASES; do
    case "$case" in
        echo)
            "$B/dynakv-load" bench --echo --clients 64 --duration-s "$DURATION" --quiet >"$OUT/echo.txt"
            python3 - "$OUT/echo.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
thr = re.search(r"throughput (\d+)/s", t).group(1)
p50, p99 = re.search(r"p50 ([\d.]+)  p90 [\d.]+  p99 ([\d.]+)", t).groups()
cpu = re.search(r"server CPU: ([\d.]+)", t).group(1)
print(f"| echo server, 64 clients | {thr} | {float(p50):.2f} | {float(p99):.2f} | {cpu} | 0.00 % | 0 |")
PY
            ;;
        one)
            cluster 1 "$OUT/perf-one.txt"
            bench "1 node, 64 clients" "$OUT/perf-one.txt" 64
            stop ;;
        big)
            # 64 clients x 18,750 keys of 32 bytes with 8-byte values: 1.2M keys.
            cluster 1 "$OUT/perf-big.txt" --memory-limit 1024
            "$B/dynakv-load" bench --servers "$OUT/perf-big.txt" --clients 64 --keys-per-client 18750 \
                --read-ratio 0 --keys-in-order --requests 1200000 --duration-s 600 --value-bytes 8 --quiet >/dev/null
            echo "<!-- keys stored: $("$B/dynakv" ctl --servers "$OUT/perf-big.txt" stats 0 | grep '^keys ') -->"
            bench "1 node, 1.2M keys stored" "$OUT/perf-big.txt" 64 --keys-per-client 18750 --value-bytes 8
            stop ;;
        five)
            cluster 5 "$OUT/perf-five.txt"
            bench "5 nodes, random front-end, 64 clients" "$OUT/perf-five.txt" 64
            stop ;;
        twenty)
            cluster 20 "$OUT/perf-twenty.txt"
            bench "20 nodes, random front-end, 128 clients" "$OUT/perf-twenty.txt" 128
            stop ;;
    esac
done
