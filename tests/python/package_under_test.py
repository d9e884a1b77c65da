"""Where the greenlet package under test lives: python/ of this
repository, or GREENLET_PACKAGE_ROOT (make test-asan points it at the
ASan build). Subprocess tests put it on PYTHONPATH."""
import os
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PACKAGE_ROOT = os.environ.get("GREENLET_PACKAGE_ROOT",
                              os.path.join(REPOSITORY, "python"))


def require_gevent():
    """gevent comes from Debian's python3-gevent, which is built for
    Debian's python3 only: on that interpreter the tests that need it must
    run (ImportError fails them); on the others (pyenv's 3.10, 3.12, 3.13)
    they are skipped, saying why."""
    import pytest
    try:
        import gevent  # noqa: F401
    except ImportError:
        if os.path.realpath(sys.executable).startswith("/usr/bin/"):
            raise
        pytest.skip("no gevent for this interpreter: Debian's "
                    "python3-gevent is built for /usr/bin/python3")
