"""Where the greenlet package under test lives: python/ of this
repository, or GREENLET_PACKAGE_ROOT (make test-asan points it at the
ASan build). Subprocess tests put it on PYTHONPATH."""
import os

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PACKAGE_ROOT = os.environ.get("GREENLET_PACKAGE_ROOT",
                              os.path.join(REPOSITORY, "python"))
