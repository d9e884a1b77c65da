#!/bin/bash
# watch_demo.sh -- the Python half of `make demo`: a gevent echo server
# with clients (gevent_echo.py) runs under `python -m greenlet.inspect run`,
# and while it runs, `python -m greenlet.inspect` lists it from outside and
# `python -m greenlet.inspect PID` shows its tree of greenlets, read from
# its monitor segment; its own report follows when it exits.
# Usage: watch_demo.sh PYTHON   (run from the repository root)
set -euo pipefail
# The first N lines of standard input, reading all of it: with pipefail,
# `| head` would fail the script whenever the writer meets the closed pipe.
first() { awk -v n="$1" 'NR <= n'; }
PYTHON=${1:-/usr/bin/python3}
export PYTHONPATH=python
REPORT=$(mktemp -t greenlet-demo-report.XXXXXX)
trap 'rm -f "$REPORT"' EXIT

"$PYTHON" -m greenlet.inspect run -o "$REPORT" \
    tests/workloads/gevent_echo.py --clients 30 --seconds 4 &
WORKLOAD=$!
sleep 1.5

echo "== python -m greenlet.inspect   (processes that use greenlets)"
"$PYTHON" -m greenlet.inspect
echo
echo "== python -m greenlet.inspect $WORKLOAD   (its greenlets, live)"
"$PYTHON" -m greenlet.inspect "$WORKLOAD" | first 16
echo "   ..."
echo
FIRST_CLIENT=$("$PYTHON" -m greenlet.inspect "$WORKLOAD" --json |
    "$PYTHON" -c 'import json, sys
print(min(g["id"] for g in json.load(sys.stdin)["greenlets"]
          if g["state"] == "suspended" and not g["main"]))')
echo "== python -m greenlet.inspect $WORKLOAD --stacks   (greenlet #$FIRST_CLIENT)"
"$PYTHON" -m greenlet.inspect "$WORKLOAD" --stacks |
    sed -n "/^  #$FIRST_CLIENT /,/^  #/p" | sed '$d'
echo
wait "$WORKLOAD"
echo "== the workload's own report at exit (python -m greenlet.inspect run)"
sed -n '/at exit/,$p' "$REPORT" | first 12
echo "   ..."
