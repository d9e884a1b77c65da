"""Interpreter state that belongs to each greenlet: the frame chain
(gr_frame), recursion depth, sys.settrace, and KeyboardInterrupt."""
import _thread
import signal
import sys
import time

import pytest

from greenlet import getcurrent, greenlet


def test_gr_frame_of_a_suspended_greenlet():
    main = getcurrent()

    def inner():
        main.switch()

    def outer():
        inner()

    g = greenlet(outer)
    assert g.gr_frame is None
    g.switch()
    frame = g.gr_frame
    assert frame.f_code.co_name == "inner"
    assert frame.f_back.f_code.co_name == "outer"
    g.switch()
    assert g.gr_frame is None


def test_recursion_depth_is_per_greenlet():
    main = getcurrent()
    limit = sys.getrecursionlimit()

    def recurse(n):
        return recurse(n + 1) if n < 100000 else n

    def deep_then_switch(depth):
        if depth:
            return deep_then_switch(depth - 1)
        main.switch()
        with pytest.raises(RecursionError):
            recurse(0)
        return "ok"

    sys.setrecursionlimit(400)
    try:
        # 300 frames deep in another greenlet do not count against main
        g = greenlet(deep_then_switch)
        g.switch(300)
        def two_hundred(n):
            return two_hundred(n - 1) if n else "main fine"
        assert two_hundred(200) == "main fine"
        assert g.switch() == "ok"
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("install", [sys.settrace, sys.setprofile])
def test_tracing_and_profiling_follow_the_running_greenlet(install):
    main = getcurrent()
    calls = []

    def hook(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    def in_child_after_switch():
        pass

    def child():
        main.switch()
        in_child_after_switch()

    g = greenlet(child)
    g.switch()
    install(hook)  # in main; the hook is the thread's
    try:
        def in_main():
            pass
        in_main()
        g.switch()
    finally:
        install(None)
    assert "in_main" in calls and "in_child_after_switch" in calls


def test_keyboard_interrupt_reaches_the_running_greenlet():
    # Raised in the greenlet that runs when it arrives: it ends that
    # greenlet and reaches its parent through its frames. (CPython 3.13.0
    # raises it so that a handler around the loop does not see it, with or
    # without greenlets; its traceback still passes through the loop.)
    def busy():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pass

    g = greenlet(busy)
    timer = __import__("threading").Timer(0.05, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt) as raised:
        g.switch()
    timer.join()
    assert g.dead
    assert "busy" in [entry.name for entry in raised.traceback]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
