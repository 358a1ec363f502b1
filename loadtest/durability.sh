#!/usr/bin/env bash
# The durability figures of docs/benchmarks.md, in one sitting:
#   modes    one node at 64 clients, 50 % writes: memory-only against each
#            --fsync mode, in alternating rounds (CPU per request, req/s, p99)
#   five     the same for a 5-node cluster (CPU summed over the nodes)
#   fill     the 500-byte fill with a data directory (paced and unpaced)
#   restart  a node holding that fill: SHUTDOWN, start, time until ready
#   disk     disk use after a fill and while every key is overwritten 10 times
#   DURATION=s  seconds per load run (default 8);  ROUNDS=n  (default 3)
#   CASES="..." a subset of: modes five fill restart disk
source "$(dirname "$0")/lib.sh"
DURATION="${DURATION:-8}"
ROUNDS="${ROUNDS:-3}"
CASES="${CASES:-modes five fill restart disk}"
PORT=44400
DATA="$OUT/durability-data"

start_nodes() { # n file [node options]
    local n="$1" file="$2"; shift 2
    rm -rf "$DATA"
    for i in $(seq 0 $((n - 1))); do echo "127.0.0.1:$((PORT + i))"; done >"$file"
    for i in $(seq 0 $((n - 1))); do
        local opts=("$@")
        # "DATA" in the options stands for this node's own data directory.
        opts=("${opts[@]//DATA/$DATA/$i}")
        "$B/dynakv" 127.0.0.1 $((PORT + i)) "$file" ${opts[@]+"${opts[@]}"} 2>>"$file.$i.log" &
        pids+=($!)
    done
    until "$B/dynakv" ctl --servers "$file" ready >/dev/null 2>&1; do sleep 0.05; done
}

stop() { cleanup; pids=(); sleep 0.5; }

row() { # label json
    python3 - "$@" <<'PY'
import json, sys
label, path = sys.argv[1:3]
r = json.load(open(path))
l = r["latency_us"]
print(f'| {label} | {r["throughput"]:.0f} | {l["p50"]/1000:.2f} | {l["p99"]/1000:.2f} | {r["server_cpu_us_per_request"]:.2f} | {r["wrong_reads"]} |')
PY
}

bench() { # label servers
    "$B/dynakv-load" bench --servers "$2" --clients 64 --duration-s "$DURATION" --quiet \
        --json "$OUT/durability.json" >/dev/null
    row "$1" "$OUT/durability.json"
}

MODES=("memory-only|" "periodic (default)|--data-dir DATA" "periodic=100|--data-dir DATA --fsync periodic=100"
    "always|--data-dir DATA --fsync always" "never|--data-dir DATA --fsync never")

compare() { # nodes label-suffix
    echo "| mode | req/s | p50 ms | p99 ms | server CPU us/request | wrong reads |"
    echo "|---|---|---|---|---|---|"
    for round in $(seq 1 "$ROUNDS"); do
        for mode in "${MODES[@]}"; do
            local label="${mode%%|*}" opts="${mode#*|}"
            # shellcheck disable=SC2086
            start_nodes "$1" "$OUT/durability-$1.txt" $opts
            bench "$label, round $round$2" "$OUT/durability-$1.txt"
            stop
        done
    done
}

disk_bytes() { du -sb "$1" | cut -f1; }

for case in $CASES; do
    case "$case" in
        modes) compare 1 "" ;;
        five) compare 5 ", 5 nodes" ;;
        fill)
            for pace in 3600 0; do
                start_nodes 1 "$OUT/durability-fill.txt" --data-dir DATA
                rate=(); [ "$pace" = 0 ] || rate=(--puts-per-s "$pace")
                echo "fill with a data directory, ${rate[*]:-unpaced}:"
                "$B/dynakv-load" capacity --server "127.0.0.1:$PORT" --value-bytes 500 --no-verify ${rate[@]+"${rate[@]}"} | tail -4
                echo "disk after the fill: $(disk_bytes "$DATA/0") bytes"
                stop
            done ;;
        restart)
            start_nodes 1 "$OUT/durability-restart.txt" --data-dir DATA
            "$B/dynakv-load" capacity --server "127.0.0.1:$PORT" --value-bytes 500 --no-verify --puts-per-s 3600 | tail -2
            keys=$("$B/dynakv" ctl --servers "$OUT/durability-restart.txt" stats 0 | awk '$1=="keys"{print $2}')
            for how in SHUTDOWN SIGKILL; do
                if [ "$how" = SHUTDOWN ]; then
                    "$B/dynakv" ctl --servers "$OUT/durability-restart.txt" shutdown 0 >/dev/null || true
                else
                    kill -9 "${pids[0]}"
                fi
                wait "${pids[0]}" 2>/dev/null || true
                pids=()
                t0=$(date +%s%N)
                "$B/dynakv" 127.0.0.1 "$PORT" "$OUT/durability-restart.txt" --data-dir "$DATA/0" 2>>"$OUT/durability-restart.log" &
                pids+=($!)
                until "$B/dynakv" ctl --servers "$OUT/durability-restart.txt" ready >/dev/null 2>&1; do sleep 0.01; done
                t1=$(date +%s%N)
                stats=$("$B/dynakv" ctl --servers "$OUT/durability-restart.txt" stats 0)
                echo "after $how: ready $(((t1 - t0) / 1000000)) ms after start;" \
                    "$(echo "$stats" | awk '$1=="keys"||$1=="recovery_ms"||$1=="records_recovered"||$1=="rss_bytes"{printf "%s %s  ", $1, $2}')(held $keys keys)"
            done
            stop ;;
        disk)
            # 64 clients x 1,400 keys of 32 bytes, 500-byte values: 89,600 keys, 47 MiB of data;
            # the same seed again writes the same keys again (each PUT a new record).
            start_nodes 1 "$OUT/durability-disk.txt" --data-dir DATA
            load=(--servers "$OUT/durability-disk.txt" --clients 64 --keys-per-client 1400 --read-ratio 0
                --keys-in-order --value-bytes 500 --duration-s 900 --quiet)
            "$B/dynakv-load" bench "${load[@]}" --requests 89600 >/dev/null
            stored=$("$B/dynakv" ctl --servers "$OUT/durability-disk.txt" stats 0 | awk '$1=="stored_bytes"{print $2}')
            echo "after the fill: stored $stored bytes, disk $(disk_bytes "$DATA/0") bytes"
            (peak=0; while kill -0 "${pids[0]}" 2>/dev/null; do
                b=$(disk_bytes "$DATA/0" 2>/dev/null || echo 0); [ "$b" -gt "$peak" ] && peak=$b && echo "$peak" >"$OUT/disk-peak"
                sleep 0.2; done) &
            sampler=$!
            for round in $(seq 1 10); do
                "$B/dynakv-load" bench "${load[@]}" --requests 89600 >/dev/null
                echo "after overwrite $round: disk $(disk_bytes "$DATA/0") bytes"
            done
            stats=$("$B/dynakv" ctl --servers "$OUT/durability-disk.txt" stats 0)
            echo "$stats" | grep -E '^(stored_bytes|disk_bytes|disk_files|compactions) '
            stop
            kill "$sampler" 2>/dev/null || true
            echo "peak disk use sampled every 0.2 s: $(cat "$OUT/disk-peak") bytes" ;;
    esac
done
