#!/usr/bin/env bash
# Reproduces the figures of docs/benchmarks.md on this machine: single node
# against a fresh echo-server run at each client count, a 5-node cluster with
# random front-ends, and capacity at three value sizes. Writes JSON and SVG
# files to $OUT (default output/bench) and prints markdown table rows.
source "$(dirname "$0")/lib.sh"
DURATION="${DURATION:-10}"

row() { # label clients json
    python3 - "$@" <<'PY'
import json, sys
label, clients, path = sys.argv[1:4]
r = json.load(open(path))
l = r["latency_us"]
ratio = f'{100 * r["throughput"] / r["echo_throughput"]:.0f} %' if r["echo_throughput"] else "-"
print(f'| {label} | {clients} | {r["throughput"]:.0f} | {ratio} | {l["p50"]/1000:.2f} | {l["p99"]/1000:.2f} | {l["p999"]/1000:.2f} | {r["retry_rate"]*100:.2f} % | {r["wrong_reads"]} |')
PY
}

echo "| target | clients | req/s | vs echo | p50 ms | p99 ms | p99.9 ms | retries | wrong reads |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '127.0.0.1:43200\n' >"$OUT/one.txt"
"$B/dynakv" 127.0.0.1 43200 "$OUT/one.txt" 2>"$OUT/one.log" &
pids+=($!)
sleep 0.5
for clients in 1 16 64 256 1024; do
    "$B/dynakv-load" bench --servers "$OUT/one.txt" --clients "$clients" --duration-s "$DURATION" --echo --quiet \
        --json "$OUT/single-$clients.json" --plot "$OUT/single-$clients.svg" >/dev/null
    row "1 node" "$clients" "$OUT/single-$clients.json"
done
kill "${pids[0]}"

for i in 0 1 2 3 4; do echo "127.0.0.1:$((43210 + i))"; done >"$OUT/five.txt"
for i in 0 1 2 3 4; do
    "$B/dynakv" serve --listen "127.0.0.1:$((43210 + i))" --servers "$OUT/five.txt" 2>"$OUT/five-$i.log" &
    pids+=($!)
done
until "$B/dynakv" ctl --servers "$OUT/five.txt" ready >/dev/null 2>&1; do sleep 0.3; done
for clients in 1 64 256 1024; do
    "$B/dynakv-load" bench --servers "$OUT/five.txt" --clients "$clients" --duration-s "$DURATION" --quiet \
        --json "$OUT/five-$clients.json" --plot "$OUT/five-$clients.svg" >/dev/null
    row "5 nodes, random front-end" "$clients" "$OUT/five-$clients.json"
done
cleanup

echo
for size in 500 5000 10000; do
    "$B/dynakv" 127.0.0.1 43200 "$OUT/one.txt" 2>>"$OUT/one.log" &
    pid=$!
    sleep 0.5
    "$B/dynakv-load" capacity --server 127.0.0.1:43200 --value-bytes "$size" --refill
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
