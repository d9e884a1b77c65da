"""Nothing outlives its thread: once a thread has ended, its main greenlet
and the greenlets it made are freed, unless code elsewhere still holds
them -- counted with gc and get_total_main_greenlets(), over many threads,
plain and with gevent hubs made and destroyed in them (gevent's thread
pools and hub-per-thread services do that all day)."""
import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

from greenlet import _greenlet, getcurrent, greenlet

from package_under_test import PACKAGE_ROOT, require_gevent


def greenlet_objects():
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet))


def settled(mains, objects, timeout=10):
    """Waits for the cleanups of ended threads; True once the counts are
    back to these."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = greenlet_objects()  # collects first: garbage is not alive
        if (_greenlet.get_pending_cleanup_count() == 0 and
                _greenlet.get_total_main_greenlets() == mains and
                found == objects):
            return True
        time.sleep(0.01)
    return False


def test_threads_leave_no_greenlets_behind():
    getcurrent()
    mains, objects = _greenlet.get_total_main_greenlets(), greenlet_objects()

    def work():
        here = getcurrent()
        finished = [greenlet(lambda: None) for _ in range(5)]
        for g in finished:
            g.switch()
        waiting = [greenlet(lambda: here.switch()) for _ in range(5)]
        for g in waiting:
            g.switch()  # suspended, and held by this frame only
        nested = greenlet(lambda: greenlet(lambda: here.switch()).switch())
        nested.switch()
        _greenlet.set_thread_local("in-the-dict", greenlet(
            lambda: here.switch()))

    for _ in range(50):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert settled(mains, objects)


GEVENT_THREADS = textwrap.dedent("""
    import gc, json, sys, threading, time
    import gevent, gevent.hub, gevent.threadpool
    from greenlet import _greenlet, getcurrent, greenlet

    def counts():
        gc.collect()
        return (_greenlet.get_total_main_greenlets(),
                sum(1 for o in gc.get_objects() if isinstance(o, greenlet)))

    def hub_thread(leave_waiting):
        def job(i):
            gevent.sleep(0.001 * (i % 3))
            return i
        jobs = [gevent.spawn(job, i) for i in range(10)]
        gevent.joinall(jobs[:7] if leave_waiting else jobs)
        gevent.spawn(gevent.sleep, 60)  # suspended in the hub's loop
        gevent.get_hub().destroy(destroy_loop=True)

    gevent.get_hub()  # this thread's own hub, which the pool uses, first
    before = counts()
    for i in range(20):
        thread = threading.Thread(target=hub_thread, args=(i % 2,))
        thread.start()
        thread.join()
    pool = gevent.threadpool.ThreadPool(3)
    assert pool.map(lambda x: x * 2, range(30)) == [x * 2 for x in range(30)]
    pool.kill()
    pool.join()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        gevent.sleep(0.01)
        if (counts() == before and
                _greenlet.get_pending_cleanup_count() == 0):
            break
    print(json.dumps([before, counts()]))
""")


def test_gevent_hubs_in_threads_leave_no_greenlets_behind():
    require_gevent()
    completed = subprocess.run(
        [sys.executable, "-c", GEVENT_THREADS], capture_output=True,
        text=True, timeout=300, env=dict(os.environ, PYTHONPATH=PACKAGE_ROOT))
    assert completed.returncode == 0, completed.stderr
    before, after = json.loads(completed.stdout)
    assert after == before  # main greenlets alive, greenlet objects
