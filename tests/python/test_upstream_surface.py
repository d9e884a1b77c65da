"""What user code written for upstream greenlet 3.x may touch, beyond what
upstream's own suite checks: the private helpers its tests and tools call
(each doing what it says), the names on the type, repr in every state, and
upstream's exact messages and exception types. Against this package."""
import copy
import gc
import pickle
import sys
import threading
import time
import weakref

import pytest

import greenlet as package
from greenlet import _greenlet, getcurrent, greenlet

from test_threads import run_in_thread, suspended_until_unwound


def wait_until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


# ------------------------------------------------------------ the helpers

def test_main_greenlets_are_counted_while_they_live():
    getcurrent()
    before = _greenlet.get_total_main_greenlets()
    inside = run_in_thread(lambda: (getcurrent(),
                                    _greenlet.get_total_main_greenlets())[1])
    assert inside == before + 1
    wait_until(lambda: _greenlet.get_total_main_greenlets() == before)
    # One held past its thread's end counts until it is freed.
    held = run_in_thread(getcurrent)
    assert _greenlet.get_total_main_greenlets() == before + 1
    wait_until(lambda: held.dead)  # its thread has gone
    assert repr(held).endswith("(otid=0x(nil)) (thread exited) dead>")
    del held
    gc.collect()
    assert _greenlet.get_total_main_greenlets() == before


def test_cleanup_after_a_thread_is_pending_until_done():
    # A greenlet kept in the thread state's dict (set_thread_local) dies
    # when CPython clears that dict, after the binding forgot the thread:
    # it is killed there, and what that needed is released once the OS
    # thread is gone -- counted by get_pending_cleanup_count meanwhile.
    getcurrent()
    mains = _greenlet.get_total_main_greenlets()
    died_in = []

    def work():
        _greenlet.set_thread_local("kept", suspended_until_unwound(died_in))
        return threading.get_ident()

    ident = run_in_thread(work)
    assert died_in == [ident]  # killed in its own thread, at its end
    wait_until(lambda: _greenlet.get_pending_cleanup_count() == 0 and
               _greenlet.get_total_main_greenlets() == mains)


def test_set_thread_local_puts_an_item_in_the_thread_dict():
    released = threading.Event()

    class Marker:
        def __del__(self):
            released.set()

    def work():
        _greenlet.set_thread_local("test-key", Marker())
        return released.is_set()

    assert run_in_thread(work) is False  # held while the thread lived
    assert released.wait(10)              # its dict went with the thread
    with pytest.raises(TypeError):
        _greenlet.set_thread_local("only the key")
    with pytest.raises(TypeError):
        _greenlet.set_thread_local([], 1)  # unhashable


def test_trash_delete_nesting_is_per_greenlet_and_zero_at_rest():
    assert _greenlet.get_tstate_trash_delete_nesting() == 0
    seen = []

    class Deep:
        def __del__(self):
            seen.append(_greenlet.get_tstate_trash_delete_nesting())

    nested = ()
    for _ in range(2000):  # deep enough for the trash can to defer
        nested = (Deep(), nested)
    del nested
    assert len(seen) == 2000
    if sys.version_info < (3, 13):  # 3.13 has no counter (see the docs)
        assert max(seen) > 0
    assert _greenlet.get_tstate_trash_delete_nesting() == 0
    # A greenlet starts at 0, whatever its starter's level.
    inside = []

    class Starter:
        def __del__(self):
            inside.append(greenlet(
                _greenlet.get_tstate_trash_delete_nesting).switch())

    nested = ()
    for _ in range(2000):
        nested = (Starter(), nested)
    del nested
    assert set(inside) == {0}


def test_optional_cleanup_releases_the_frames_of_dead_threads_greenlets():
    class Held:
        pass

    def make(count, refs):
        def work():
            here = getcurrent()

            def body():
                thing = Held()
                refs.append(weakref.ref(thing))
                here.switch()

            kept = [greenlet(body) for _ in range(count)]
            for g in kept:
                g.switch()
            return kept
        kept = run_in_thread(work)
        wait_until(lambda: all(g.dead for g in kept))
        return kept

    assert _greenlet.get_clocks_used_doing_optional_cleanup() is not None
    before = _greenlet.get_clocks_used_doing_optional_cleanup()
    refs = []
    kept = make(2000, refs)
    del kept
    gc.collect()
    assert all(ref() is None for ref in refs)  # their locals released
    used = _greenlet.get_clocks_used_doing_optional_cleanup()
    assert used >= before
    assert package.CLOCKS_PER_SEC == _greenlet.CLOCKS_PER_SEC > 1
    _greenlet.enable_optional_cleanup(False)
    try:
        assert _greenlet.get_clocks_used_doing_optional_cleanup() is None
        refs = []
        kept = make(3, refs)
        del kept
        gc.collect()
        assert all(ref() is not None for ref in refs)  # left, as upstream
    finally:
        _greenlet.enable_optional_cleanup(True)
    assert _greenlet.get_clocks_used_doing_optional_cleanup() == 0
    _greenlet.enable_optional_cleanup(True)  # enabled again: value kept
    assert _greenlet.get_clocks_used_doing_optional_cleanup() == 0


# ------------------------------------------------------ module and type

def test_module_and_package_names():
    for name in ("CLOCKS_PER_SEC", "GREENLET_USE_CONTEXT_VARS",
                 "GREENLET_USE_GC", "GREENLET_USE_TRACING", "GreenletExit",
                 "_C_API", "enable_optional_cleanup", "error",
                 "get_clocks_used_doing_optional_cleanup", "getcurrent",
                 "gettrace", "greenlet", "settrace"):
        assert getattr(package, name) is getattr(_greenlet, name), name
    assert package.__all__ == ["__version__", "_C_API", "GreenletExit",
                               "error", "getcurrent", "greenlet", "gettrace",
                               "settrace"]
    for flag in ("GREENLET_USE_GC", "GREENLET_USE_TRACING",
                 "GREENLET_USE_CONTEXT_VARS",
                 "GREENLET_USE_STANDARD_THREADING"):
        assert getattr(_greenlet, flag) is True
    assert issubclass(package.error, Exception)
    assert package.GreenletExit.__mro__[1] is BaseException
    assert package.error.__module__ == package.GreenletExit.__module__ == \
        "greenlet"


def test_the_type_carries_the_module_functions():
    for name in ("getcurrent", "error", "GreenletExit", "settrace",
                 "gettrace"):
        assert getattr(greenlet, name) is getattr(package, name)
    assert greenlet.getcurrent() is getcurrent()
    assert greenlet(lambda: None).getcurrent() is getcurrent()


def test_the_type_has_no_del_and_no_main_attribute():
    # Upstream's type has no __del__ slot (an explicit call would kill a
    # live greenlet) and no `main` attribute (subclasses may use the name).
    assert not hasattr(greenlet, "__del__")

    class WithMain(greenlet):
        pass

    g = WithMain()
    g.main = "mine"
    assert g.main == "mine"
    assert greenlet.__module__ == "greenlet" and greenlet.__name__ == "greenlet"


def test_repr_in_every_state():
    main = getcurrent()
    here = "(otid=0x%x)" % threading.get_ident()
    assert repr(main).endswith(here + " current active started main>")
    pending = greenlet(lambda: None)
    assert repr(pending).endswith("(otid=0x(nil)) pending>")
    assert repr(pending).startswith("<greenlet.greenlet object at 0x")

    class Named(greenlet):
        pass

    seen = {}

    def body():
        seen["inside"] = repr(getcurrent())
        seen["main"] = repr(main)
        main.switch()

    g = Named(body)
    g.switch()
    assert seen["inside"].startswith("<Named object at 0x")
    assert seen["inside"].endswith(here + " current active started>")
    assert seen["main"].endswith(here + " suspended active started main>")
    assert repr(g).endswith(here + " suspended active started>")
    g.switch()
    assert repr(g).endswith(here + " dead>")
    assert str(g) == repr(g)
    held = run_in_thread(lambda: (greenlet(lambda: main.switch()),)[0])
    assert repr(held).endswith("(otid=0x(nil)) pending>")  # never started
    started = []

    def work():
        g = greenlet(lambda: getcurrent().parent.switch())
        g.switch()
        started.append(g)

    run_in_thread(work)
    wait_until(lambda: started[0].dead)
    assert repr(started[0]).endswith("(otid=0x(nil)) (thread exited) dead>")


def test_messages_and_exception_types():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    for wrong in (None, 1, "42"):
        with pytest.raises(TypeError) as raised:
            g.parent = wrong
        assert str(raised.value) == (
            "GreenletChecker: Expected any type of greenlet, not "
            + type(wrong).__name__)
    with pytest.raises(AttributeError, match="^can't delete attribute$"):
        del g.parent
    with pytest.raises(AttributeError,
                       match="^cannot set the parent of a main greenlet$"):
        main.parent = g
    with pytest.raises(ValueError, match="^cyclic parent chain$"):
        g.parent = g
    with pytest.raises(AttributeError,
                       match="^Main greenlets do not have a run attribute.$"):
        main.run
    g.switch()
    with pytest.raises(AttributeError, match="^run$"):
        g.run
    with pytest.raises(AttributeError, match="^run cannot be set after the "
                                            "start of the greenlet$"):
        g.run = len
    with pytest.raises(AttributeError, match="^run cannot be set after the "
                                            "start of the greenlet$"):
        g.__init__(len)
    g.__init__()  # nothing given: nothing done
    with pytest.raises(AttributeError,
                       match="^can't delete context attribute$"):
        del g.gr_context
    with pytest.raises(TypeError, match="^greenlet context must be a "
                                        "contextvars.Context or None$"):
        g.gr_context = {}
    with pytest.raises(TypeError, match="takes no keyword arguments"):
        g.throw(typ=ValueError)
    with pytest.raises(TypeError, match="green\\(\\) takes at most 2 "):
        greenlet(None, None, None)
    with pytest.raises(TypeError, match="^cannot serialize 'greenlet.greenlet'"
                                        " object$"):
        g.__getstate__()
    for serialize in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError):
            serialize(g)
    g.switch()


def test_init_runs_the_setters():
    g = greenlet(run=None)
    assert g.run is None
    del g.run  # allowed while pending
    with pytest.raises(AttributeError):
        g.run
    parent = greenlet()
    g.__init__(len, parent)
    assert g.run is len and g.parent is parent


def test_the_switcher_looks_run_up_in_its_own_greenlet():
    main = getcurrent()
    looked_up_in = []

    class Looking(greenlet):
        def __getattribute__(self, name):
            if name == "run":
                looked_up_in.append(getcurrent())
            return greenlet.__getattribute__(self, name)

        def run(self):  # a method wins over run= given to the constructor
            return "method"

    g = Looking(run=lambda: "argument")
    assert g.switch() == "method"
    assert looked_up_in == [main]


def test_throw_makes_the_exception_in_the_thrower():
    main = getcurrent()
    made_in = []

    class Made(Exception):
        def __init__(self, *args):
            made_in.append(getcurrent())
            super().__init__(*args)

    g = greenlet(lambda: main.switch())
    g.switch()
    with pytest.raises(Made):
        g.throw(Made)
    assert made_in == [main] and g.dead

    class Refused(Exception):
        def __init__(self):
            raise KeyError("from the constructor")

    g = greenlet(lambda: main.switch())
    g.switch()
    with pytest.raises(KeyError):  # the constructor's error is thrown
        g.throw(Refused)
    assert g.dead
    # Into a greenlet that never ran: its run is looked up first, then it
    # ends at once with the exception, GreenletExit being a return.
    assert isinstance(greenlet(len).throw(), package.GreenletExit)
    with pytest.raises(AttributeError, match="^run$"):
        greenlet().throw()


def test_a_raising_tracer_is_removed_and_its_error_raised_in_the_target():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()

    def tracer(event, args):
        raise KeyError(event)

    package.settrace(tracer)
    try:
        with pytest.raises(KeyError):
            g.switch()
        assert package.gettrace() is None
        assert g.dead
    finally:
        package.settrace(None)


def test_the_tracer_hears_a_switch_to_the_running_greenlet():
    main = getcurrent()
    events = []
    package.settrace(lambda event, args: events.append((event, args)))
    try:
        assert main.switch(5) == 5
    finally:
        package.settrace(None)
    assert events == [("switch", (main, main))]


def test_a_profile_set_in_a_greenlet_goes_on_in_its_parent():
    main = getcurrent()
    calls = []

    def profile(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    def marker():
        pass

    def body():
        sys.setprofile(profile)

    greenlet(body).switch()
    try:
        marker()
    finally:
        sys.setprofile(None)
    assert "marker" in calls
    assert main is getcurrent()


def test_unswitchable_greenlet_fails_switches_on_request():
    main = getcurrent()
    g = _greenlet.UnswitchableGreenlet(lambda: main.switch("started") or 2)
    assert g.force_switch_error is False
    g.force_switch_error = True
    with pytest.raises(SystemError, match="^Failed to switch stacks into a "
                                          "greenlet for the first time.$"):
        g.switch()
    assert not g and not g.dead
    g.force_switch_error = False
    assert g.switch() == "started"
    g.force_switch_error = True
    with pytest.raises(SystemError, match="^Failed to switch stacks into a "
                                          "running greenlet.$"):
        g.switch()
    g.force_switch_error = False
    assert g.switch() == 2
    with pytest.raises(AttributeError, match="Cannot delete"):
        del g.force_switch_error


def test_stack_saved_is_what_a_suspended_greenlet_keeps():
    main = getcurrent()
    assert main._stack_saved == 0  # running
    inside = []
    g = greenlet(lambda: inside.append(main._stack_saved) or main.switch())
    g.switch()
    assert inside[0] > 0   # main, suspended below g
    assert g._stack_saved > 0
    g.switch()
    assert g._stack_saved == 0
