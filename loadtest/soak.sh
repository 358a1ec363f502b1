#!/usr/bin/env bash
# Membership stability of a big cluster on this one machine: NODES (default
# 150) nodes, first idle for IDLE_S seconds (default 600), then for LOAD_S
# seconds (default 600) under a bench of CLIENTS (default 64) closed-loop
# clients against random nodes. No node is killed or stopped, so every peer
# declared dead, every suspension and every stall is false. Every 10 s it
# samples whether every node counts every node (`dynakv ctl status`); at the
# end of each phase it prints what the nodes counted during it, and the
# CPU (all nodes together, % of one core) and RSS per node when idle.
source "$(dirname "$0")/lib.sh"
NODES="${NODES:-150}"
IDLE_S="${IDLE_S:-600}"
LOAD_S="${LOAD_S:-600}"
CLIENTS="${CLIENTS:-64}"
SERVERS="$OUT/soak.txt"
for i in $(seq 0 $((NODES - 1))); do echo "127.0.0.1:$((24000 + i))"; done >"$SERVERS"
for node in $(cat "$SERVERS"); do
    "$B/dynakv" serve --listen "$node" --servers "$SERVERS" 2>>"$OUT/soak-${node##*:}.log" &
    pids+=($!)
done
started=$SECONDS
until "$B/dynakv" ctl --servers "$SERVERS" ready >/dev/null 2>&1; do sleep 0.5; done
echo "$NODES nodes ready, every one counting all, $((SECONDS - started)) s after start"

cpu_ticks() { for pid in "${pids[@]}"; do awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null; done | awk '{s += $1} END {print s}'; }
totals() { "$B/dynakv" ctl --servers "$SERVERS" status | tail -1; }

# phase NAME SECONDS: samples membership every 10 s while the phase runs.
phase() {
    local name="$1" seconds="$2" inexact=0 samples=0 before after ticks_before
    before="$(totals)"
    ticks_before="$(cpu_ticks)"
    local until=$((SECONDS + seconds))
    while [ $SECONDS -lt $until ]; do
        sleep 10
        samples=$((samples + 1))
        line="$("$B/dynakv" ctl --servers "$SERVERS" status | tail -1)"
        case "$line" in "$NODES of $NODES count exactly"*) ;; *) inexact=$((inexact + 1)); echo "  not exact: $line" ;; esac
    done
    after="$(totals)"
    local ticks=$(($(cpu_ticks) - ticks_before))
    echo "$name, $seconds s: $samples samples, $inexact with some node's count not exact"
    echo "  CPU of all nodes: $(awk -v t="$ticks" -v s="$seconds" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", 100 * t / hz / s}') % of one core"
    echo "  at start: $before"
    echo "  at end:   $after"
}

phase idle "$IDLE_S"
rss="$(for pid in "${pids[@]}"; do awk '/VmRSS/ {print $2}' "/proc/$pid/status"; done | sort -n |
    awk '{a[NR] = $1} END {printf "min %.2f, median %.2f, max %.2f MiB", a[1] / 1024, a[int((NR + 1) / 2)] / 1024, a[NR] / 1024}')"
echo "  RSS per node after the idle phase: $rss"
"$B/dynakv-load" bench --servers "$SERVERS" --clients "$CLIENTS" --duration-s "$LOAD_S" --quiet --json "$OUT/soak-load.json" >/dev/null &
bench=$!
phase "under load ($CLIENTS clients)" "$LOAD_S"
wait "$bench" || true
python3 - "$OUT/soak-load.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f'  load: {r["throughput"]:.0f} req/s, p99 {r["latency_us"]["p99"] / 1000:.1f} ms, wrong reads {r["wrong_reads"]}')
PY
