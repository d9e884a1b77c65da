"""Greenlets and threads: each thread its own main greenlet, switches to
another thread's greenlet refused, a greenlet made in one thread started
in another, and many threads switching at once."""
import logging
import threading
import time

import pytest

from greenlet import error, getcurrent, greenlet


def run_in_thread(function):
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as failure:  # reported in the test's thread
            outcome["error"] = failure

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def suspended_until_unwound(unwound, kind=greenlet):
    """A greenlet of `kind`, started in this thread and suspended (back in
    the caller) in a try whose finally appends to `unwound` the ident of
    the thread it unwinds in."""
    here = getcurrent()

    def body():
        try:
            here.switch()
        finally:
            unwound.append(threading.get_ident())

    g = kind(body)
    g.switch()
    return g


def test_each_thread_has_its_own_main_greenlet():
    main = getcurrent()
    other = run_in_thread(getcurrent)
    assert other is not main and other.parent is None


def test_switching_to_another_threads_greenlet_is_refused():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()

    def switch_from_elsewhere():
        with pytest.raises(error):
            g.switch()

    run_in_thread(switch_from_elsewhere)
    assert g.switch() == () and g.dead


def test_parent_from_another_thread_is_refused_once_started():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    other_main = run_in_thread(getcurrent)
    with pytest.raises(ValueError):
        g.parent = other_main
    g.switch()


def test_greenlet_made_here_can_start_in_another_thread():
    g = greenlet(lambda x: x + 1)

    def adopt():
        g.parent = getcurrent()
        return g.switch(1)

    assert run_in_thread(adopt) == 2


def test_eight_threads_with_many_greenlets_each():
    def work():
        main = getcurrent()
        greenlets = [greenlet(lambda i=i: main.switch(i) + 1) for i in range(1000)]
        assert [g.switch() for g in greenlets] == list(range(1000))
        assert [g.switch(i) for i, g in enumerate(greenlets)] == \
            [i + 1 for i in range(1000)]
        return all(g.dead for g in greenlets)

    results = []
    threads = [threading.Thread(target=lambda: results.append(work()))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 8


class Worker(greenlet):
    """A subclass: its instances are deallocated through the type's
    subtype_dealloc, which runs the finalizer first."""


@pytest.mark.parametrize("kind", [greenlet, Worker])
def test_greenlet_dropped_in_another_thread_is_killed_in_its_own(kind):
    import sys
    main = getcurrent()
    died_in = []

    def body():
        try:
            main.switch()
        finally:
            died_in.append(threading.get_ident())

    references_to_type = sys.getrefcount(kind)
    holder = [kind(body) for _ in range(5)]
    for g in holder:
        g.switch()
    del g
    run_in_thread(holder.clear)  # the last references go away over there
    assert died_in == []  # not killed in that thread
    greenlet(lambda: None).switch()  # our next switch releases them here
    assert died_in == [threading.get_ident()] * 5
    assert sys.getrefcount(kind) == references_to_type


def test_greenlets_that_outlive_their_thread_are_freed_without_running():
    # As upstream: a thread's end does not kill the suspended greenlets
    # that code elsewhere still holds; they read as dead, and when they are
    # dropped their frames are released without running (their locals
    # freed, their finally blocks never run).
    import gc
    import weakref

    class Held:
        pass

    unwound, held = [], []

    def work():
        here = getcurrent()

        def body():
            thing = Held()
            held.append(weakref.ref(thing))
            try:
                here.switch()
            finally:
                unwound.append(True)

        greenlets = [greenlet(body) for _ in range(3)]
        for g in greenlets:
            g.switch()
        return greenlets

    greenlets = run_in_thread(work)
    # The thread's greenlets die when the OS thread exits, a moment after
    # join() has returned (its thread state is gone by then).
    deadline = time.monotonic() + 10
    while not all(g.dead for g in greenlets) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert unwound == []
    assert all(g.dead and not g for g in greenlets)
    assert all(repr(g).endswith(" (thread exited) dead>") for g in greenlets)
    assert all(ref() is not None for ref in held)  # their frames hold them
    del greenlets
    gc.collect()
    assert [ref() for ref in held] == [None] * 3
    assert unwound == []


def test_greenlets_only_their_thread_holds_are_killed_in_it():
    unwound = []

    def work():
        kept = [suspended_until_unwound(unwound) for _ in range(3)]  # noqa: F841
        return threading.get_ident()  # kept goes with this frame

    ident = run_in_thread(work)
    assert unwound == [ident] * 3


def test_settrace_is_per_thread():
    import greenlet as greenlet_module
    seen = []
    previous = greenlet_module.settrace(lambda event, args: seen.append(event))
    try:
        def elsewhere():
            assert greenlet_module.gettrace() is None
            main = getcurrent()
            greenlet(lambda: main.switch()).switch()

        run_in_thread(elsewhere)
        assert seen == []
    finally:
        greenlet_module.settrace(previous)


def test_gr_context_of_a_greenlet_running_elsewhere_is_refused():
    ready, done = threading.Event(), threading.Event()
    other = []

    def worker():
        other.append(getcurrent())
        ready.set()
        done.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait(10)
    try:
        with pytest.raises(ValueError):
            other[0].gr_context
        with pytest.raises(ValueError):
            other[0].gr_context = None
    finally:
        done.set()
        thread.join()


def test_fork_child_keeps_this_threads_greenlets():
    import os
    main = getcurrent()
    g = greenlet(lambda: main.switch("suspended") or "finished")
    assert g.switch() == "suspended"
    run_in_thread(getcurrent)  # another thread that used greenlets
    pid = os.fork()
    if pid == 0:
        ok = getcurrent() is main and g.switch() == "finished"
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert g.switch() == "finished"


def test_a_greenlet_killed_as_its_thread_ends_still_sees_its_thread():
    # Held only by the thread's function, it dies with that frame, while
    # threading still knows the thread: logging names it, not "Dummy-N".
    names = []

    class Recorder(logging.Handler):
        def emit(self, record):
            names.append(record.threadName)

    logger = logging.getLogger("test_threads.thread_end")
    logger.propagate = False
    recorder = Recorder()
    logger.addHandler(recorder)
    try:
        def work():
            here = getcurrent()

            def body():
                try:
                    here.switch()
                finally:
                    logger.warning("unwound")

            greenlet(body).switch()

        thread = threading.Thread(target=work, name="worker-13")
        thread.start()
        thread.join()
    finally:
        logger.removeHandler(recorder)
    assert names == ["worker-13"]
