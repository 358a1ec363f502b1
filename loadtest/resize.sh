#!/usr/bin/env bash
# Growing a running cluster under load: N nodes (memory only) filled with
# KEYS keys of 500-byte values, a 64-client bench running through the
# first N nodes for 40 s; at 12 s the servers file is rewritten with 2N
# nodes, `dynakv ctl reload` sent and the new nodes started. Prints, per
# case: the time from the reload command until every node counts 2N, and
# until every node is ready with no pull left; the bytes the transfer
# streams carried against the ideal (one copy of each key the new nodes
# hold, at the wire's 548 bytes per entry); and throughput and p99 in the
# seconds of the change against those before it.
#
#   CASES="5 20" KEYS=64000 loadtest/resize.sh
# LOAD=0 grows an idle cluster: the bytes moved without writes racing the
# transfers (a bucket written meanwhile differs between holders, and
# moves again when the old holder hands it off).
source "$(dirname "$0")/lib.sh"
CASES="${CASES:-5 20}"
KEYS="${KEYS:-64000}"
ENTRY_WIRE_BYTES=548 # stamp, version, flags, lengths (16), a 32-byte key, a 500-byte value
now() { date +%s.%N; }
since() { python3 -c "print(f'{($(now) - $1) * 1000:.0f}')"; }

stat_sum() { # servers stat
    local total=0 n i value
    n=$(grep -c . "$1")
    for ((i = 0; i < n; i++)); do
        value=$("$B/dynakv" ctl --servers "$1" stats "$i" | awk -v s="$2" '$1 == s { print $2 }')
        total=$((total + ${value:-0}))
    done
    echo "$total"
}

for n in $CASES; do
    grow=$((2 * n))
    base=$((24000 + 100 * n))
    small="$OUT/resize-$n.txt"
    big="$OUT/resize-$grow.txt"
    for ((i = 0; i < grow; i++)); do echo "127.0.0.1:$((base + i))"; done >"$big"
    head -n "$n" "$big" >"$small"
    live="$OUT/resize-servers-$n.txt"
    cp "$small" "$live"
    rm -f "$live.secret"
    start_node() { "$B/dynakv" serve --listen "127.0.0.1:$((base + $1))" --servers "$live" 2>>"$OUT/resize-$n-node-$1.log" & pids+=($!); }
    for ((i = 0; i < n; i++)); do start_node "$i"; done
    until "$B/dynakv" ctl --servers "$live" ready >/dev/null 2>&1; do sleep 0.3; done
    "$B/dynakv-load" bench --servers "$small" --clients 64 --keys-per-client $((KEYS / 64)) --keys-in-order \
        --read-ratio 0 --requests "$KEYS" --value-bytes 500 --seed 7 --quiet >/dev/null
    received_before=$(stat_sum "$live" transfer_bytes_received)
    if [ "${LOAD:-1}" = 1 ]; then
        "$B/dynakv-load" bench --servers "$small" --clients 64 --duration-s 40 --quiet --seed 9 \
            --label "$n -> $grow nodes at 12 s" --json "$OUT/resize-$n.json" --plot "$OUT/resize-$n.svg" &
        bench=$!
    else
        sleep 40 & bench=$!
    fi
    sleep 12
    cp "$big" "$live"
    t0=$(now)
    "$B/dynakv" ctl --servers "$live" reload | head -2
    for ((i = n; i < grow; i++)); do start_node "$i"; done
    "$B/dynakv-load" members --servers "$live" --expect "$grow" --timeout-s 120 >/dev/null
    counted=$(since "$t0")
    until "$B/dynakv" ctl --servers "$live" ready >/dev/null 2>&1 && [ "$(stat_sum "$live" pulls_pending)" = 0 ]; do
        sleep 0.2
    done
    ready=$(since "$t0")
    wait "$bench"
    received=$(( $(stat_sum "$live" transfer_bytes_received) - received_before ))
    new_keys=0
    for ((i = n; i < grow; i++)); do
        k=$("$B/dynakv" ctl --servers "$live" stats "$i" | awk '$1 == "keys" { print $2 }')
        new_keys=$((new_keys + k))
    done
    ideal=$((new_keys * ENTRY_WIRE_BYTES))
    [ "${LOAD:-1}" = 1 ] || echo '{"timeline": [], "wrong_reads": 0}' >"$OUT/resize-$n.json"
    python3 - "$OUT/resize-$n.json" "$n" "$grow" "$counted" "$ready" "$received" "$ideal" "$new_keys" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n, grow, counted, ready, received, ideal, new_keys = sys.argv[2:]
line = r["timeline"]
def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0
before = line[2:12]
during = [s for s in line[12:] if s["second"] * 1000 <= 12000 + int(ready) + 1000]
tput = lambda ss: median([s["completed"] for s in ss])
p99 = lambda ss: median([s["p99_us"] for s in ss]) / 1000
print(f"{n} -> {grow}: every node counted {grow} after {counted} ms, all ready with no pull left after {ready} ms")
print(f"  bytes received on transfer streams {int(received):,}; ideal {int(ideal):,} ({new_keys} keys the new nodes hold x 548 B): {int(received) / max(1, int(ideal)):.2f}x")
if line:
    print(f"  load before: {tput(before)} req/s, p99 {p99(before):.1f} ms; during the change ({len(during)} s): {tput(during)} req/s, p99 {p99(during):.1f} ms; wrong reads {r['wrong_reads']}")
PY
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    pids=()
    sleep 1
done
