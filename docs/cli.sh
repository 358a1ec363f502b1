#!/usr/bin/env bash
# Regenerates docs/cli.md from the binaries' --help (run/install first).
# tests/ops.rs checks the dynakv parts of it against the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
{
    echo "# Command-line reference"
    echo
    echo "The \`--help\` output of every command, as printed by the binaries \`run/install\` links into \`bin/\` (regenerate with \`bash docs/cli.sh\`)."
    for cmd in "dynakv --help" "dynakv ctl --help" "dynakv ctl stats --help" "dynakv ctl status --help" \
        "dynakv ctl metrics --help" "dynakv ctl exporter --help" "dynakv ctl put --help" "dynakv ctl keys --help" \
        "dynakv ctl universe --help" "dynakv ctl reload --help" "dynakv ctl decommission --help" "dynakv-load --help" \
        "dynakv-load bench --help" "dynakv-load capacity --help" "dynakv-load check --help" \
        "dynakv-load members --help" "dynakv-load echo-server --help" "dynakv-sim --help"; do
        printf '\n## `%s`\n\n```\n' "$cmd"
        bin/$cmd 2>&1
        echo '```'
    done
    printf '\n## `run/start --help`, `run/status --help`, `run/stop --help`, `run/reload --help`\n\n```\n'
    for s in start status stop reload; do run/$s --help; done
    echo '```'
} >docs/cli.md
