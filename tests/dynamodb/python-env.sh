#!/usr/bin/env bash
# Prints the path of a Python that has boto3 and pytest: python3 itself if
# it has both, else a venv made (once) under target/dynamodb-compare/venv
# with them installed from PyPI. Used by tests/dynamodb_api.rs and
# run-against.sh's users alike.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if python3 -c 'import boto3, pytest' 2>/dev/null; then
    command -v python3
    exit 0
fi
cache="${DYNAMODB_COMPARE_DIR:-$root/target/dynamodb-compare}"
venv="$cache/venv"
# One maker at a time: tests run in parallel, and two venvs made in one
# place at once fail ("File exists").
mkdir -p "$cache"
exec 9>"$cache/.python-env.lock"
flock 9
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import boto3, pytest' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check boto3 pytest >&2
fi
echo "$venv/bin/python"
