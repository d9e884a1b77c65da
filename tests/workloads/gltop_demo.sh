#!/bin/bash
# gltop_demo.sh -- the gltop half of `make demo`: a gevent echo server with
# clients (gevent_echo.py, with a "hog" greenlet that now and then computes
# for three seconds without yielding) is watched in tmux by gltop, with
# `python -m greenlet.inspect PID` refreshing beside it.
#
# On a terminal, it attaches to the tmux session: look around in gltop
# (Enter on a greenlet, t, s, /, h), and q in gltop ends the demo.
# Without a terminal (a log, CI), it drives gltop itself and prints what
# the screen showed: the list, the hog flagged B, and a greenlet's detail.
# Usage: gltop_demo.sh PYTHON   (run from the repository root, after make)
set -euo pipefail
# The first N lines of standard input, reading all of it: with pipefail,
# `| head` would fail the script whenever the writer meets the closed pipe.
first() { awk -v n="$1" 'NR <= n'; }
PYTHON=${1:-/usr/bin/python3}
export PYTHONPATH=python GREENLET_SPAWN_SITES=1
TMUX_SOCKET="gltop-demo-$$"
# Its own tmux server; inside a tmux session (TMUX set) it nests.
tmux() { TMUX= command tmux -L "$TMUX_SOCKET" -f /dev/null "$@"; }

"$PYTHON" tests/workloads/gevent_echo.py --clients 40 --seconds 3600 \
    --hog-every 5 --hog-seconds 3 >/dev/null &
WORKLOAD=$!
trap 'kill $WORKLOAD 2>/dev/null || true; tmux kill-server 2>/dev/null || true' EXIT
sleep 1

INSPECT="while kill -0 $WORKLOAD 2>/dev/null; do clear; $PYTHON -m greenlet.inspect $WORKLOAD | head -n 60; sleep 2; done"
if [ -t 0 ] && [ -t 1 ]; then
    tmux new-session -d -s demo "build/gltop -p $WORKLOAD; tmux -L $TMUX_SOCKET kill-server"
    tmux split-window -h -t demo "$INSPECT"
    tmux select-pane -t demo -L
    echo "gltop (left) and python -m greenlet.inspect (right); q in gltop ends the demo"
    sleep 1
    tmux attach -t demo || true  # the server ends with gltop: attach says so
    exit 0
fi

# No terminal: show what a person would see, screen by screen.
tmux new-session -d -s demo -x 120 -y 40 "build/gltop -p $WORKLOAD -d 0.5"
screen() {
    echo "== $1"
    tmux capture-pane -p -t demo | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
    echo
}
sleep 2
screen "gltop -p $WORKLOAD: the server, its clients and their handlers, as a tree"
tmux send-keys -t demo / h o g Enter   # only the hog, and its ancestors
for _ in $(seq 60); do   # wait for the hog's next computation
    tmux capture-pane -p -t demo | grep -q " B  *hog" && break
    sleep 0.25
done
screen "/hog: the hog computes without yielding: flagged B, the others wait"
tmux send-keys -t demo / Escape t s s s   # all, flat, by heap-held bytes
sleep 1
tmux send-keys -t demo Home Enter
sleep 2
screen "t, s s s, Enter: the greenlet that holds the most stack on the heap"
tmux send-keys -t demo Escape q
echo "== python -m greenlet.inspect $WORKLOAD   (beside it, the same process)"
"$PYTHON" -m greenlet.inspect "$WORKLOAD" | first 12
echo "   ..."
