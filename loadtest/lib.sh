# Shared by the benchmark scripts: build once, then B is the directory of
# the release binaries and OUT where results go (default output/bench).
# Node processes started through `track` are killed when the script exits.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The node on its own: built with the simulator, it would carry the
# simulator's planted bugs and invariant checks (cargo unifies features).
cargo build --release --quiet -p dynakv --bins
cargo build --release --quiet -p dynakv-loadtest -p dynakv-sim --bins
B="$ROOT/target/x86_64-unknown-linux-gnu/release"
OUT="${OUT:-$ROOT/output/bench}"
mkdir -p "$OUT"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
