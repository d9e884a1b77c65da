"""Interpreter shutdown with live greenlets: suspended ones in the main
thread, in daemon threads that are still running, and in threads that
ended while their greenlets were suspended. Each case in a subprocess,
which must exit cleanly (status 0, nothing on stderr)."""
import os
import subprocess
import sys
import textwrap

from package_under_test import PACKAGE_ROOT

import pytest


SCRIPTS = {
    "main thread": """
        main = greenlet.getcurrent()
        live = [greenlet.greenlet(lambda: main.switch()) for _ in range(20)]
        for g in live:
            g.switch()
    """,
    "daemon threads": """
        started = threading.Barrier(4)
        def park():
            here = greenlet.getcurrent()
            kept = [greenlet.greenlet(lambda: here.switch()) for _ in range(5)]
            for g in kept:
                g.switch()
            started.wait()
            threading.Event().wait()
        for _ in range(3):
            threading.Thread(target=park, daemon=True).start()
        started.wait()
    """,
    "ended threads": """
        kept = []
        def leave_suspended():
            here = greenlet.getcurrent()
            gs = [greenlet.greenlet(lambda: here.switch()) for _ in range(5)]
            for g in gs:
                g.switch()
            kept.extend(gs)
        threads = [threading.Thread(target=leave_suspended) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(g.dead for g in kept)
    """,
}


@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_clean_exit_with_live_greenlets(case):
    script = "import greenlet, threading\n" + textwrap.dedent(SCRIPTS[case]) \
        + "\nprint('end of script')\n"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True,
        timeout=60, env=dict(os.environ, PYTHONPATH=PACKAGE_ROOT))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "end of script\n"
    assert completed.stderr == ""
