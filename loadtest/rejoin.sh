#!/usr/bin/env bash
# Throughput during a crash and a rejoin: a 5-node cluster under a 64-client
# bench for 30 s; node 2 is killed (-9) at 8 s and restarted empty at 16 s.
# The clients use the four other nodes as front-ends (a client that picks a
# dead node itself can only wait out its retries; that is measured by
# FRONT_ENDS=all). Writes $OUT/rejoin.svg and $OUT/rejoin.json.
source "$(dirname "$0")/lib.sh"
for i in 0 1 2 3 4; do echo "127.0.0.1:$((43220 + i))"; done >"$OUT/rejoin.txt"
if [ "${FRONT_ENDS:-survivors}" = all ]; then
    cp "$OUT/rejoin.txt" "$OUT/front-ends.txt"
else
    grep -v ":43222$" "$OUT/rejoin.txt" >"$OUT/front-ends.txt"
fi
start() { "$B/dynakv" serve --listen "127.0.0.1:$((43220 + $1))" --servers "$OUT/rejoin.txt" 2>>"$OUT/rejoin-$1.log" & pids[$1]=$!; }
for i in 0 1 2 3 4; do start "$i"; done
until "$B/dynakv" ctl --servers "$OUT/rejoin.txt" ready >/dev/null 2>&1; do sleep 0.3; done
"$B/dynakv-load" bench --servers "$OUT/front-ends.txt" --clients 64 --duration-s 30 --quiet --label "5 nodes, kill -9 node 2 at 8 s, restart at 16 s" \
    --json "$OUT/rejoin.json" --plot "$OUT/rejoin.svg" &
bench=$!
sleep 8
kill -9 "${pids[2]}"
sleep 8
start 2
wait "$bench"
python3 - "$OUT/rejoin.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
per_second = [s["completed"] for s in r["timeline"]][:30]
steady = sorted(per_second[2:8])[len(per_second[2:8]) // 2]
print("per-second completions:", per_second)
print(f"steady (median of 2-8 s): {steady}/s; lowest second: {min(per_second[1:29])}/s "
      f"({100 * min(per_second[1:29]) / steady:.0f} % of steady); wrong reads: {r['wrong_reads']}")
PY
