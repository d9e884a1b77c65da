"""pytest setup for the Python tests: they must test this repository's
greenlet (python/greenlet), never an installed one."""
import os

import greenlet

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED = os.path.join(os.path.dirname(os.path.dirname(HERE)), "python",
                        "greenlet")

assert os.path.dirname(os.path.abspath(greenlet.__file__)) == EXPECTED, (
    "tests are running against %s; run them with PYTHONPATH=python (make "
    "test-python)" % greenlet.__file__)
