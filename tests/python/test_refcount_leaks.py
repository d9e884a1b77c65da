"""No reference leaks: under Debian's debug interpreter (python3-dbg) and a
debug build of the extension (make test-python builds it), the total
reference count does not grow over 100,000 switch, throw and kill
operations."""
import os
import subprocess
import textwrap

from package_under_test import REPOSITORY

# The debug build sits beside the normal one, in python/.
REPOSITORY_PACKAGE = os.path.join(REPOSITORY, "python")

DEBUG_PYTHON = "/usr/bin/python3-dbg"

WORKLOAD = textwrap.dedent("""
    import gc, sys
    from greenlet import getcurrent, greenlet
    main = getcurrent()

    def cycle():
        def body(x):
            try:
                y = main.switch(x + 1)
                main.switch(y)
            except KeyError:
                return "caught"
        g = greenlet(body)
        assert g.switch(1) == 2          # start
        assert g.switch("a") == "a"      # switch
        assert g.throw(KeyError) == "caught"  # throw
        h = greenlet(lambda: main.switch())
        h.switch()
        del h                            # kill by garbage collection

    def run(times):
        for _ in range(times):
            cycle()
        gc.collect()

    run(1000)
    before = sys.gettotalrefcount()
    run(25000)
    print(sys.gettotalrefcount() - before)
""")


def test_total_refcount_does_not_grow():
    completed = subprocess.run(
        [DEBUG_PYTHON, "-c", WORKLOAD], capture_output=True, text=True,
        timeout=600, env=dict(os.environ, PYTHONPATH=REPOSITORY_PACKAGE))
    assert completed.returncode == 0, completed.stderr
    growth = int(completed.stdout.strip())
    # 25,000 cycles: a leak of one reference per operation would be 25,000+.
    assert growth < 50, growth
