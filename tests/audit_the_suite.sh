#!/bin/sh
# audit_the_suite.sh PYTHON LOG -- the project's own Python tests, run
# with the periodic hazard audit on in every process they start
# (GREENLET_AUDIT_EVERY, lines appended to LOG): the audit must find no
# hazard in them. The hazard tests, which make hazards on purpose, are
# left out. Fails, printing the log, if any line was written.
set -u
python=$1
log=$2
rm -f "$log"
GREENLET_AUDIT_EVERY=0.05 GREENLET_AUDIT_LOG="$(pwd)/$log" \
PYTHONPATH=python "$python" -m pytest -q -p no:cacheprovider tests/python \
    --deselect tests/python/test_hazard_audit.py || exit 1
if [ -s "$log" ]; then
    echo "audit_the_suite: the periodic audit reported hazards:" >&2
    cat "$log" >&2
    exit 1
fi
echo "audit_the_suite: no hazard reported"
