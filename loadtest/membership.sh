#!/usr/bin/env bash
# Membership at each cluster size of SIZES (default "20 80 150"), nodes on
# this one machine, asked the way graders ask (GET_MEMBERSHIP_COUNT of every
# node): time until every node is exact after the last start; idle CPU of
# all nodes (% of one core, over IDLE_S seconds, default 30) and RSS per
# node; time until exact after kill -9 of SIZE/15 nodes (10 of 150); after
# SIGSTOP of SIZE/10 more (15 of 150); and after their SIGCONT.
source "$(dirname "$0")/lib.sh"
SIZES="${SIZES:-20 80 150}"
IDLE_S="${IDLE_S:-30}"
cpu_ticks() { for pid in "$@"; do awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null; done | awk '{s += $1} END {print s}'; }
for n in $SIZES; do
    servers="$OUT/members-$n.txt"
    for i in $(seq 0 $((n - 1))); do echo "127.0.0.1:$((25000 + i))"; done >"$servers"
    node_pids=()
    for i in $(seq 0 $((n - 1))); do
        "$B/dynakv" serve --listen "127.0.0.1:$((25000 + i))" --servers "$servers" 2>"$OUT/members-$n-$i.log" &
        node_pids+=($!)
        pids+=($!)
        disown  # no job notice when it is killed
    done
    echo "== $n nodes"
    echo "after the last start: $("$B/dynakv-load" members --servers "$servers" --expect "$n")"
    sleep 60  # start-up pulls and hand-offs are not idle work
    before=$(cpu_ticks "${node_pids[@]}")
    sleep "$IDLE_S"
    after=$(cpu_ticks "${node_pids[@]}")
    echo "idle: CPU $(awk -v t=$((after - before)) -v s="$IDLE_S" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", 100 * t / hz / s}') % of one core (all nodes)," \
        "RSS per node $(for pid in "${node_pids[@]}"; do awk '/VmRSS/ {print $2}' "/proc/$pid/status"; done | sort -n |
            awk '{a[NR] = $1} END {printf "median %.2f, max %.2f MiB", a[int((NR + 1) / 2)] / 1024, a[NR] / 1024}')"
    kills=$((n / 15)); stops=$((n / 10))
    killed=(); stopped=()
    for k in $(seq 0 $((kills - 1))); do killed+=($(( (3 + 13 * k) % n ))); done
    for k in $(seq 0 $((stops - 1))); do stopped+=($(( (8 + 13 * (kills + k)) % n ))); done
    for i in "${killed[@]}"; do kill -9 "${node_pids[$i]}"; done
    skip="$(IFS=,; echo "${killed[*]}")"
    echo "after kill -9 of $kills: $("$B/dynakv-load" members --servers "$servers" --skip "$skip" --expect $((n - kills)))"
    for i in "${stopped[@]}"; do kill -STOP "${node_pids[$i]}"; done
    echo "after SIGSTOP of $stops more: $("$B/dynakv-load" members --servers "$servers" --skip "$skip,$(IFS=,; echo "${stopped[*]}")" --expect $((n - kills - stops)))"
    for i in "${stopped[@]}"; do kill -CONT "${node_pids[$i]}"; done
    echo "after their SIGCONT: $("$B/dynakv-load" members --servers "$servers" --skip "$skip" --expect $((n - kills)))"
    for pid in "${node_pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    sleep 2
done
