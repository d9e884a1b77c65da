"""pytest setup for the Python tests: they must test this repository's
greenlet (see package_under_test.py), never an installed one."""
import os

import greenlet

from package_under_test import PACKAGE_ROOT

IMPORTED_FROM = os.path.dirname(os.path.dirname(os.path.abspath(greenlet.__file__)))

assert IMPORTED_FROM == os.path.abspath(PACKAGE_ROOT), (
    "tests are running against %s, not %s; run them with make test-python"
    % (greenlet.__file__, PACKAGE_ROOT))
