"""Finalization as upstream greenlet does it: a greenlet that started and
has not finished is killed (GreenletExit raised in it, its finally blocks
run) each time the last reference to it goes, whatever its class, however
often it was resurrected, from whichever thread it was dropped; one that
refuses to die is reported and kept. And no crash when greenlets meet the
collector, finalizers, weakref and gc callbacks that switch."""
import gc
import os
import subprocess
import sys
import threading
import time
import weakref

import pytest

from greenlet import GreenletExit, getcurrent, greenlet

from package_under_test import PACKAGE_ROOT
from test_threads import suspended_until_unwound


def suspended(kind=greenlet, body=None):
    """A greenlet of `kind`, started and suspended in `body` (default: a
    try/finally that notes its end in .events)."""
    main = getcurrent()
    events = []

    def default():
        try:
            main.switch()
        except GreenletExit as exit:
            events.append(("exit", exit.args))
            raise
        finally:
            events.append("finally")

    g = kind(body or default)
    g.switch()
    return g, events


class WithDel(greenlet):
    deleted = []

    def __del__(self):
        WithDel.deleted.append(self.dead)


def test_a_subclass_with_del_is_killed_after_its_del():
    WithDel.deleted.clear()
    g, events = suspended(WithDel)
    del g
    assert WithDel.deleted == [False]  # __del__ first, while alive
    assert events == [("exit", ("Killing the greenlet because all "
                                "references have vanished.",)), "finally"]


def test_sort_suspended_in_its_key_is_restored_when_dropped():
    main = getcurrent()
    items = [3, 1, 2]

    def key(item):
        main.switch()
        return item

    for kind in (greenlet, WithDel):
        items[:] = [3, 1, 2]
        g = kind(lambda: items.sort(key=key))
        g.switch()
        assert items == []  # list.sort empties the list while it sorts
        del g
        assert items == [3, 1, 2]  # the kill ended the sort: restored


class Quiet(greenlet):
    def __del__(self):
        pass


def test_many_subclass_greenlets_dropped_leave_no_memory_behind():
    def allocated():
        gc.collect()
        return sys.getallocatedblocks()

    main = getcurrent()

    def body():
        data = bytearray(1000)  # noqa: F841  (released when killed)
        main.switch()

    def round_of(count):
        for _ in range(count):
            g = Quiet(body)
            g.switch()

    round_of(2000)
    before = allocated()
    round_of(20000)
    assert allocated() - before < 2000  # not one block per greenlet


def test_a_resurrected_greenlet_is_killed_again():
    main = getcurrent()
    kept, exits = [], []

    def body():
        for _ in range(2):
            try:
                main.switch()
            except GreenletExit:
                exits.append(True)
                kept.append(getcurrent())  # resurrected
        exits.append("done")

    g = greenlet(body)
    g.switch()
    del g
    assert exits == [True] and len(kept) == 1
    del kept[:]  # its last reference again: killed again
    assert exits == [True, True, "done"]


def test_dropped_in_another_thread_it_is_killed_in_its_own():
    for kind in (greenlet, WithDel):
        died_in = []
        holder = [suspended_until_unwound(died_in, kind) for _ in range(100)]
        thread = threading.Thread(target=holder.clear)
        thread.start()
        thread.join()
        assert died_in == []  # not there, where it cannot run
        getcurrent()  # our next greenlet call takes them back
        assert died_in == [threading.get_ident()] * 100


REFUSES_TO_DIE = """
import gc, weakref
from greenlet import GreenletExit, getcurrent, greenlet
main = getcurrent()
stubborn = []

def body():
    while True:
        try:
            main.switch()
        except GreenletExit:
            stubborn.append(True)  # and suspends again

g = greenlet(body)
g.switch()
ref = weakref.ref(g)
del g
gc.collect()
print(stubborn == [True], ref() is not None)  # kept: freeing it is unsafe
"""


def test_one_that_refuses_to_die_is_reported_and_kept():
    # In a process of its own: the greenlet it keeps lives as long.
    completed = subprocess.run(
        [sys.executable, "-c", REFUSES_TO_DIE], capture_output=True,
        text=True, timeout=60, env=dict(os.environ, PYTHONPATH=PACKAGE_ROOT))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["True", "True"]
    assert completed.stderr.startswith(
        "GreenletExit did not kill <greenlet.greenlet object at 0x")
    assert completed.stderr.endswith(" suspended active started>\n")


def test_kill_lends_the_parent_and_gives_it_back():
    hub = greenlet(lambda: None)
    main = getcurrent()
    seen = []

    def worker():
        try:
            main.switch()
        except GreenletExit:
            seen.append(getcurrent().parent)
            seen.append(getcurrent())
            hub.switch()

    g = greenlet(worker, parent=hub)
    g.switch()
    del g
    assert seen[0] is main and seen[1].parent is hub
    del seen[:]


# ---------------------------------------------------- hostile object graphs

class SwitchesInDel:
    """A finalizer that switches to a greenlet and back."""

    def __init__(self, log):
        self.log = log

    def __del__(self):
        main = getcurrent()
        self.log.append(greenlet(lambda: main.switch("from del")).switch())


def test_cycles_with_suspended_greenlets_and_finalizers_that_switch():
    main = getcurrent()
    log = []
    survivors = []
    for _ in range(50):
        cycle = []

        def body(cycle=cycle):
            holder = SwitchesInDel(log)  # noqa: F841
            cycle.append(getcurrent())
            main.switch()

        g = greenlet(body)
        g.switch()
        cycle.append(SwitchesInDel(log))
        cycle.append(cycle)
        survivors.append(weakref.ref(g))
        del g, cycle
    gc.collect()
    # The suspended greenlets are not the collector's (their frames would
    # run inside it): they live, intact, until their cycles are broken.
    assert all(ref() is not None for ref in survivors)
    for ref in survivors:
        ref().gr_frame.f_locals["cycle"].clear()
    gc.collect()
    assert all(ref() is None for ref in survivors)
    assert log and set(log) == {"from del"}


def test_greenlets_dropped_inside_del():
    main = getcurrent()
    ended = []

    def body():
        try:
            main.switch()
        finally:
            ended.append(True)

    class DropsGreenlets:
        def __init__(self):
            self.greenlets = [greenlet(body) for _ in range(10)]
            for g in self.greenlets:
                g.switch()

        def __del__(self):
            self.greenlets.clear()  # each killed, from inside __del__

    for _ in range(20):
        DropsGreenlets()
    holders = [DropsGreenlets() for _ in range(20)]
    for holder in holders:
        holder.self = holder  # cyclic: the collector runs __del__
    del holders, holder
    gc.collect()
    assert len(ended) == 400


def test_weakref_callbacks_that_switch():
    main = getcurrent()
    heard = []

    def callback(ref):
        heard.append(greenlet(lambda: main.switch("callback")).switch())

    class Thing:
        pass

    refs = []
    for _ in range(100):
        thing = Thing()
        thing.cycle = thing
        refs.append(weakref.ref(thing, callback))
        g = greenlet(lambda t=thing: main.switch())
        g.switch()
        del thing, g  # killed now: its frame held the thing
    gc.collect()
    assert heard == ["callback"] * 100


def test_gc_callbacks_that_switch():
    main = getcurrent()
    heard = []

    def callback(phase, info):
        g = greenlet(lambda: main.switch(phase))
        heard.append(g.switch())
        g.switch()

    gc.callbacks.append(callback)
    try:
        for _ in range(20):
            cycle = []
            cycle.append(cycle)
            g = greenlet(lambda: main.switch())
            g.switch()
            del cycle, g
            gc.collect()
    finally:
        gc.callbacks.remove(callback)
    assert heard.count("start") >= 20 and heard.count("stop") >= 20


def test_collector_and_switching_greenlets_in_threads():
    errors = []

    def churn():
        try:
            main = getcurrent()
            for i in range(300):
                cycle = [SwitchesInDel([])]
                cycle.append(cycle)
                g = greenlet(lambda: main.switch())
                g.switch()
                if i % 3 == 0:
                    g.switch()
                del g, cycle
                if i % 50 == 0:
                    gc.collect()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    gc.collect()
