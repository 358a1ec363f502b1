#!/usr/bin/env bash
# A flood of 10 KB PUTs of new keys at a cluster until past full, with the
# resident memory of every node sampled every 50 ms: the largest sample
# must stay under the 64 MiB limit. Prints the bench summary and the peak
# RSS per node.
#   NODES=5 CLIENTS=256 DURATION=60 loadtest/flood.sh
source "$(dirname "$0")/lib.sh"
NODES="${NODES:-5}"
CLIENTS="${CLIENTS:-256}"
DURATION="${DURATION:-60}"
PORT=44700
servers="$OUT/flood.txt"
for i in $(seq 0 $((NODES - 1))); do echo "127.0.0.1:$((PORT + i))"; done >"$servers"
for i in $(seq 0 $((NODES - 1))); do
    "$B/dynakv" 127.0.0.1 $((PORT + i)) "$servers" 2>"$servers.$i.log" &
    pids+=($!)
done
until "$B/dynakv" ctl --servers "$servers" ready >/dev/null 2>&1; do sleep 0.3; done
python3 - "$OUT/flood-rss.txt" "${pids[@]}" <<'PY' &
import sys, time
out, pids = sys.argv[1], sys.argv[2:]
peak = {p: 0 for p in pids}
samples = 0
def rss(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
while True:
    alive = False
    for p in pids:
        r = rss(p)
        if r is not None:
            alive = True
            peak[p] = max(peak[p], r)
    samples += 1
    with open(out, "w") as f:
        f.write(f"{samples} samples every 50 ms; peak RSS per node (MiB): "
                + ", ".join(f"{peak[p] / 1024:.2f}" for p in pids) + "\n")
    if not alive:
        break
    time.sleep(0.05)
PY
sampler=$!
"$B/dynakv-load" bench --servers "$servers" --clients "$CLIENTS" --duration-s "$DURATION" --read-ratio 0 \
    --keys-per-client 1000000 --value-bytes 10000 --quiet
"$B/dynakv" ctl --servers "$servers" status | tail -2
sleep 0.2
cat "$OUT/flood-rss.txt"
cleanup
wait "$sampler" 2>/dev/null || true
cat "$OUT/flood-rss.txt"
