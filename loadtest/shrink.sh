#!/usr/bin/env bash
# Shrinking a running cluster under load: FROM nodes (memory only) filled
# with KEYS keys of 500-byte values, a 64-client bench running through the
# nodes that stay for 40 s; at 12 s the servers file is rewritten without
# its last FROM - TO lines, `dynakv ctl reload` sent. Prints the time from
# the reload until every removed node has handed its data over and exited
# and nothing is left to move; the bytes the transfer streams carried
# against the ideal (one copy of each key the staying nodes gained, at the
# wire's 548 bytes per entry); and throughput and p99 before and during.
#
#   FROM=10 TO=7 KEYS=64000 loadtest/shrink.sh
# LOAD=0 shrinks an idle cluster.
source "$(dirname "$0")/lib.sh"
FROM="${FROM:-10}"
TO="${TO:-7}"
KEYS="${KEYS:-64000}"
ENTRY_WIRE_BYTES=548
now() { date +%s.%N; }
since() { python3 -c "print(f'{($(now) - $1) * 1000:.0f}')"; }
stat_of() { "$B/dynakv" ctl --servers "$1" stats "$2" | awk -v s="$3" '$1 == s { print $2 }'; }
stat_sum() { # servers stat
    local total=0 n i
    n=$(grep -c . "$1")
    for ((i = 0; i < n; i++)); do total=$((total + $(stat_of "$1" "$i" "$2"))); done
    echo "$total"
}

base=$((26000 + 100 * FROM))
all="$OUT/shrink-$FROM.txt"
kept="$OUT/shrink-$TO.txt"
for ((i = 0; i < FROM; i++)); do echo "127.0.0.1:$((base + i))"; done >"$all"
head -n "$TO" "$all" >"$kept"
live="$OUT/shrink-servers.txt"
cp "$all" "$live"
rm -f "$live.secret"
for ((i = 0; i < FROM; i++)); do
    "$B/dynakv" serve --listen "127.0.0.1:$((base + i))" --servers "$live" 2>>"$OUT/shrink-node-$i.log" & pids+=($!)
done
until "$B/dynakv" ctl --servers "$live" ready >/dev/null 2>&1; do sleep 0.3; done
"$B/dynakv-load" bench --servers "$kept" --clients 64 --keys-per-client $((KEYS / 64)) --keys-in-order \
    --read-ratio 0 --requests "$KEYS" --value-bytes 500 --seed 7 --quiet >/dev/null
received_before=$(stat_sum "$live" transfer_bytes_received)
keys_before=0
for ((i = 0; i < TO; i++)); do keys_before=$((keys_before + $(stat_of "$live" "$i" keys))); done
if [ "${LOAD:-1}" = 1 ]; then
    "$B/dynakv-load" bench --servers "$kept" --clients 64 --duration-s 40 --quiet --seed 9 \
        --label "$FROM -> $TO nodes at 12 s" --json "$OUT/shrink.json" --plot "$OUT/shrink.svg" &
    bench=$!
else
    sleep 40 & bench=$!
fi
sleep 12
cp "$kept" "$live"
t0=$(now)
"$B/dynakv" ctl --servers "$live" reload | head -1
# Until every removed node has exited and no node has anything left to move.
while :; do
    gone=1
    for ((i = TO; i < FROM; i++)); do kill -0 "${pids[$i]}" 2>/dev/null && gone=0; done
    if [ "$gone" = 1 ] && [ "$(stat_sum "$live" pulls_pending)" = 0 ] && [ "$(stat_sum "$live" buckets_handing_off)" = 0 ]; then break; fi
    sleep 0.2
done
done_ms=$(since "$t0")
wait "$bench"
received=$(($(stat_sum "$live" transfer_bytes_received) - received_before))
keys_after=$(stat_sum "$live" keys)
ideal=$(((keys_after - keys_before) * ENTRY_WIRE_BYTES))
[ "${LOAD:-1}" = 1 ] || echo '{"timeline": [], "wrong_reads": 0}' >"$OUT/shrink.json"
python3 - "$OUT/shrink.json" "$FROM" "$TO" "$done_ms" "$received" "$ideal" "$((keys_after - keys_before))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
frm, to, done, received, ideal, gained = sys.argv[2:]
line = r["timeline"]
def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0
before = line[2:12]
during = [s for s in line[12:] if s["second"] * 1000 <= 12000 + int(done) + 1000]
tput = lambda ss: median([s["completed"] for s in ss])
p99 = lambda ss: median([s["p99_us"] for s in ss]) / 1000
print(f"{frm} -> {to}: removed nodes exited and nothing left to move {done} ms after the reload")
print(f"  bytes received on transfer streams {int(received):,}; ideal {int(ideal):,} ({gained} key copies the staying nodes gained x 548 B): {int(received) / max(1, int(ideal)):.2f}x")
if line:
    print(f"  load before: {tput(before)} req/s, p99 {p99(before):.1f} ms; during the change ({len(during)} s): {tput(during)} req/s, p99 {p99(during):.1f} ms; wrong reads {r['wrong_reads']}")
PY
