#!/bin/bash
# hazard_demo.sh -- the hazard audit's part of `make demo`: a process
# loads an extension that keeps a pointer to a stack buffer across a
# greenlet switch (tests/hazards/stack_hazards.c, built here), and the
# audit finds it from outside: `python -m greenlet.inspect audit PID
# --watch` names the holder, the greenlet and its C frame, and watches the
# address; the process then stores through the stale pointer, and the next
# audit shows the write caught, with the writer's backtrace; gltop flags
# the greenlet H.
# Usage: hazard_demo.sh PYTHON   (run from the repository root, after make)
set -euo pipefail
PYTHON=${1:-/usr/bin/python3}
export PYTHONPATH=python
BUILT=build/hazard-demo
mkdir -p "$BUILT"
INCLUDE=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
SUFFIX=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
cc -shared -fPIC -pthread -O0 -g -I"$INCLUDE" -Ipython/greenlet \
    tests/hazards/stack_hazards.c \
    -o "$BUILT/stack_hazards$SUFFIX"

# The workload prints "ready PID" once greenlet "keeper" is suspended in
# the extension's keep_and_call; each line "write" makes it store through
# the kept pointer (it answers "wrote"); it ends when its input closes.
coproc WORKLOAD_IO { "$PYTHON" tests/workloads/odd_processes.py hazard "$BUILT"; }
read -r _ WORKLOAD <&"${WORKLOAD_IO[0]}"
# On the way out, closing its input ends it.
trap 'eval "exec ${WORKLOAD_IO[1]}>&-"; wait "$WORKLOAD" 2>/dev/null || true' EXIT

echo "== python -m greenlet.inspect audit $WORKLOAD --watch   (an extension's pointer into a saved stack)"
"$PYTHON" -m greenlet.inspect audit "$WORKLOAD" --watch || [ $? -eq 8 ]  # 8: found
echo
echo "== the process stores through the kept pointer; the next audit shows the write"
echo write >&"${WORKLOAD_IO[1]}"
read -r _ <&"${WORKLOAD_IO[0]}"
"$PYTHON" -m greenlet.inspect audit "$WORKLOAD" | grep -A1 "write" || true
echo
echo "== gltop -b -p $WORKLOAD -n 1   (FL: H on the greenlets it may point into)"
build/gltop -b -p "$WORKLOAD" -n 1 | cut -c1-110
