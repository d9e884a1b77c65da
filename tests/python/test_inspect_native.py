"""greenlet.inspect's native view: backtraces of suspended greenlets (also
through C code that called back into Python), stack reads as the greenlet
sees them, and which greenlet owns an address."""
import ctypes

import pytest

from greenlet import getcurrent, greenlet, inspect


def test_native_backtrace_shows_qsort_calling_back_into_python():
    main = getcurrent()
    libc = ctypes.CDLL(None)
    comparison = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                  ctypes.POINTER(ctypes.c_int))

    def compare(a, b):
        main.switch()  # suspended inside qsort's callback
        return a[0] - b[0]

    callback = comparison(compare)
    numbers = (ctypes.c_int * 3)(3, 1, 2)
    g = greenlet(lambda: libc.qsort(numbers, 3, ctypes.sizeof(ctypes.c_int),
                                    callback))
    g.switch()
    assert g._stack_saved > 0  # the walk reads the heap copy
    frames = inspect.native_backtrace(g)
    names = [frame["function"] for frame in frames]
    assert names[0] == "gl__stack_switch"
    assert names[-1] == "gl__greenlet_trampoline"
    assert any("qsort" in name for name in names), names
    qsort_frame = next(f for f in frames if "qsort" in f["function"])
    # libc's, or a sanitizer runtime's that interposes it (make test-asan)
    assert "libc.so" in qsort_frame["object"] or \
        "san.so" in qsort_frame["object"]
    while not g.dead:
        g.switch()
    assert list(numbers) == [1, 2, 3]


def test_native_backtrace_refuses_what_is_not_suspended():
    with pytest.raises(ValueError):
        inspect.native_backtrace(getcurrent())
    with pytest.raises(ValueError):
        inspect.native_backtrace(greenlet(lambda: None))
    with pytest.raises(TypeError):
        inspect.native_backtrace("not a greenlet")


def test_read_stack_and_owner_of_a_suspended_greenlets_stack():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    record = next(r for r in inspect.snapshot() if r["id"] and
                  r["state"] == "suspended" and r["saved_bytes"] == g._stack_saved
                  and r["stack_stop"] - r["stack_pointer"] == g._stack_saved)
    start, size = record["stack_pointer"], record["saved_bytes"]
    data = inspect.read_stack(g, start, size)
    assert len(data) == size and data != bytes(size)
    with pytest.raises(ValueError):
        inspect.read_stack(g, start - 8, 16)  # below its stack
    owners = inspect.owner(start)
    assert owners[0]["where"] == "live"  # our running stack is there now
    assert {"id": record["id"], "where": "saved"}.items() <= \
        next(o for o in owners if o["id"] == record["id"]).items()
    assert inspect.owner(0) == []
    g.switch()


def test_native_backtrace_and_read_stack_of_another_threads_greenlet():
    """Holding the GIL keeps the other thread from switching, so its
    suspended greenlets can be walked and read from here."""
    import threading
    ready, done = threading.Event(), threading.Event()
    parked = []

    def worker():
        here = getcurrent()
        g = greenlet(lambda: here.switch())
        g.switch()
        parked.append(g)
        ready.set()
        done.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    assert ready.wait(10)
    try:
        g, = parked
        names = [f["function"] for f in inspect.native_backtrace(g)]
        assert names[0] == "gl__stack_switch"
        assert names[-1] == "gl__greenlet_trampoline"
        record = next(r for r in inspect.snapshot()
                      if r["state"] == "suspended" and
                      r["thread_native_id"] == thread.native_id)
        data = inspect.read_stack(g, record["stack_pointer"],
                                  record["saved_bytes"])
        assert len(data) == record["saved_bytes"] > 0
    finally:
        done.set()
        thread.join()
