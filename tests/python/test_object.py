"""The greenlet object: run, parent, subclassing, __dict__, weak
references, pickling, garbage collection of suspended greenlets."""
import gc
import pickle
import weakref

import pytest

from greenlet import GreenletExit, getcurrent, greenlet


def test_run_is_gone_once_started():
    def body():
        return 1

    g = greenlet(body)
    assert g.run is body
    g.switch()
    with pytest.raises(AttributeError):
        g.run
    with pytest.raises(AttributeError):
        g.run = body


def test_subclass_with_run_method():
    class Worker(greenlet):
        def run(self, x):
            return x * 2

    assert Worker().switch(21) == 42


def test_parent_default_set_and_cycles():
    main = getcurrent()
    a, b = greenlet(lambda x: x), greenlet(lambda: 2)
    assert a.parent is main
    b.parent = a
    assert b.parent is a
    with pytest.raises(ValueError):
        a.parent = b
    with pytest.raises(ValueError):
        a.parent = a
    with pytest.raises(TypeError):
        a.parent = 1
    with pytest.raises(AttributeError):
        del a.parent
    assert main.parent is None
    assert b.switch() == 2 and a.dead  # b's result went through a


def test_dict_and_weakref():
    g = greenlet(lambda: None)
    g.label = "worker"
    assert g.__dict__ == {"label": "worker"}
    ref = weakref.ref(g)
    assert ref() is g
    del g
    gc.collect()
    assert ref() is None


def test_pickling_is_refused():
    with pytest.raises(TypeError):
        pickle.dumps(greenlet(lambda: None))


def test_suspended_greenlet_is_killed_when_collected():
    main = getcurrent()
    events = []

    def body():
        try:
            main.switch()
        except GreenletExit:
            events.append("killed")
            raise
        finally:
            events.append("finally")

    g = greenlet(body)
    g.switch()
    del g
    gc.collect()
    assert events == ["killed", "finally"]


def test_stack_saved_counts_heap_bytes():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    assert g._stack_saved == 0
    g.switch()
    assert g._stack_saved > 0
    g.switch()
    assert g._stack_saved == 0


def test_collector_never_runs_a_suspended_greenlet_in_a_cycle():
    # As upstream: a suspended greenlet is not garbage to the collector,
    # since collecting it would run its frames inside the collector, after
    # objects they use may have been cleared. The cycle keeps it, intact,
    # until something breaks it; then it is killed like any other.
    main = getcurrent()
    events = []

    def body(holder):
        holder.append(getcurrent())  # the list and the greenlet: a cycle
        try:
            main.switch()
        finally:
            events.append(len(holder))

    holder = []
    g = greenlet(body)
    g.switch(holder)
    ref = weakref.ref(g)
    del g, holder
    gc.collect()
    assert events == []                # not run by the collector
    assert ref() is not None and ref()  # still suspended
    assert ref().gr_frame.f_locals["holder"] == [ref()]
    ref().gr_frame.f_locals["holder"].clear()  # the cycle is broken
    gc.collect()
    assert ref() is None
    assert events == [0]               # killed, its frames unwound


def test_instance_layout_matches_greenlet_2_c_api():
    # PyObject_HEAD plus weakreflist, dict and pimpl, as in greenlet.h;
    # Cython-built extensions (gevent's) check this size at import.
    import struct
    pointer = struct.calcsize("P")
    assert greenlet.__basicsize__ == object.__basicsize__ + 3 * pointer
    assert greenlet.__weakrefoffset__ == object.__basicsize__
    assert greenlet.__dictoffset__ == object.__basicsize__ + pointer
