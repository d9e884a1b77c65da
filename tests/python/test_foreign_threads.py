"""Greenlets in a thread that Python did not start: a C library's thread
calling back into Python (ctypes), which runs each call under a new thread
state of the same OS thread. Greenlets that live within one call work as
anywhere; one suspended under an earlier call's thread state can never
run again (its frames link to that freed state: upstream greenlet crashes
there), so switching to it raises greenlet.error, and dropping it releases
its frames without running them. Each case runs in a process of its own,
so that a crash fails one test, not the run."""
import os
import subprocess
import sys

import pytest

from package_under_test import PACKAGE_ROOT

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    target = str(tmp_path_factory.mktemp("foreign") / "foreign_thread.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-pthread", "-O1", "-Wall",
                    "-Werror", os.path.join(HERE, "foreign_thread.c"),
                    "-o", target], check=True, timeout=120)
    return target


PROLOGUE = """
import ctypes, gc, sys, weakref
import greenlet
from greenlet import getcurrent
library = ctypes.CDLL(sys.argv[1])
CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int)
def from_foreign_thread(function, count):
    callback = CALLBACK(function)
    assert library.call_from_foreign_thread(callback, count) == 0
"""


def run(library, body):
    completed = subprocess.run(
        [sys.executable, "-c", PROLOGUE + body, library],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=PACKAGE_ROOT))
    assert completed.returncode == 0, completed.stderr
    return completed


def test_greenlets_within_one_call_work_in_every_call(library):
    completed = run(library, """
seen = []
def call(number):
    def body(x):
        try:
            raise KeyError(x)
        except KeyError:
            y = getcurrent().parent.switch(x * 2)
            assert sys.exc_info()[0] is KeyError
        return y + 1
    g = greenlet.greenlet(body)
    seen.append((g.switch(number), g.switch(10 * number), g.dead))
from_foreign_thread(call, 4)
print(seen)
""")
    assert completed.stdout.strip() == (
        "[(0, 1, True), (2, 11, True), (4, 21, True), (6, 31, True)]")
    assert completed.stderr == ""


def test_a_greenlet_of_an_earlier_thread_state_refuses_to_resume(library):
    completed = run(library, """
kept = {}
def call(number):
    try:
        if number == 0:
            def body():
                try:
                    raise KeyError
                except KeyError:
                    getcurrent().parent.switch("suspended")
            kept["g"] = greenlet.greenlet(body)
            print(kept["g"].switch())
        else:
            kept["g"].switch()
            print("resumed")
    except greenlet.error as error:
        print("refused:", error)
    # The interpreter still works under this thread state.
    try:
        raise IndexError
    except IndexError:
        assert sys.exc_info()[0] is IndexError
from_foreign_thread(call, 3)
""")
    refusal = ("refused: cannot switch to a greenlet suspended under an "
               "earlier thread state of this thread (that thread state "
               "has been deleted: PyGILState_Release)")
    assert completed.stdout.splitlines() == ["suspended", refusal, refusal]
    assert completed.stderr == ""


def test_dropping_it_releases_its_frames_without_running_them(library):
    completed = run(library, """
class Held:
    pass
kept = {}
ran = []
def call(number):
    if number == 0:
        def body():
            held = Held()
            kept["held"] = weakref.ref(held)
            try:
                getcurrent().parent.switch()
            finally:
                ran.append("finally")
        kept["g"] = greenlet.greenlet(body)
        kept["g"].switch()
    else:
        g = kept.pop("g")
        assert not g.dead
        del g
        gc.collect()
        print(kept["held"]() is None, ran)
from_foreign_thread(call, 2)
""")
    assert completed.stdout.split() == ["True", "[]"]
    assert completed.stderr == ""
