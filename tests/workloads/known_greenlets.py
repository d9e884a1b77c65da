"""A workload whose greenlets are known, for tests that inspect it from
outside (`python -m greenlet.inspect PID`, gltop): it builds its greenlets,
holds still, and then prints "ready <pid>". Each line it reads on standard
input makes it print, from a separate thread (so that no greenlet moves),
its own view of its greenlets as one line of JSON: what the engine reports
in-process, to compare with what the tools read from the segment.

    python tests/workloads/known_greenlets.py plain
        main greenlet, running (blocked on a lock)
          first-worker  suspended in parked_in_deeper
            nested      suspended in nested_body (a child of first-worker)
          worker 2, 3   suspended in parked_in_deeper
          in-qsort      suspended inside libc's qsort, in its compare
                        callback (ctypes), in compare
          never-started new; run is never_started
          finished      dead
    python tests/workloads/known_greenlets.py gevent CLIENTS
        a gevent StreamServer with CLIENTS connected clients, all idle:
        each handler suspended in its recv, each client waiting on an
        event; one thread (no resolver thread pool).
    python tests/workloads/known_greenlets.py busy
        the plain greenlets, and then "spinner", a child of main that runs
        Python code forever without switching: it blocks the others.
"""
import ctypes
import json
import os
import sys
import threading
import time

from greenlet import getcurrent, greenlet, inspect

main = getcurrent()


def parked_in_deeper():
    main.switch()


def worker():
    parked_in_deeper()


def nested_body():
    main.switch()


def worker_with_child():
    child = greenlet(nested_body)
    inspect.set_name(child, "nested")
    child.switch()
    parked_in_deeper()


def compare(left, right):
    main.switch()  # suspended here, with qsort below on the C stack
    return 0


def sort_with_callback():
    values = (ctypes.c_int * 4)(4, 3, 2, 1)
    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                                     ctypes.c_void_p)
    libc = ctypes.CDLL(None)
    libc.qsort(values, 4, ctypes.sizeof(ctypes.c_int), callback_type(compare))


def never_started():
    pass


def build_plain():
    keep = []
    first = greenlet(worker_with_child)
    inspect.set_name(first, "first-worker")
    first.switch()
    keep.append(first)
    for number in (2, 3):
        g = greenlet(worker)
        inspect.set_name(g, "worker %d" % number)
        g.switch()
        keep.append(g)
    in_qsort = greenlet(sort_with_callback)
    inspect.set_name(in_qsort, "in-qsort")
    in_qsort.switch()
    keep.append(in_qsort)
    new = greenlet(never_started)
    inspect.set_name(new, "never-started")
    keep.append(new)
    finished = greenlet(lambda: None)
    inspect.set_name(finished, "finished")
    finished.switch()
    keep.append(finished)
    return keep


def spin():
    while True:
        sum(range(1000))


def build_gevent(clients):
    # Resolve in the calling greenlet: the default resolver starts a pool
    # of threads, each with greenlets of its own.
    os.environ["GEVENT_RESOLVER"] = "block"
    import gevent
    import gevent.event
    import gevent.server
    import gevent.socket
    from gevent_echo import echo  # the demo's handler, next to this file

    release = gevent.event.Event()

    def client(port, index):
        sock = gevent.socket.create_connection(("127.0.0.1", port))
        with sock:
            sock.sendall(b"hello %d" % index)
            assert sock.recv(1024) == b"hello %d" % index
            connected.append(index)
            release.wait()

    server = gevent.server.StreamServer(("127.0.0.1", 0), echo)
    server.start()
    connected = []
    spawned = [gevent.spawn(client, server.server_port, i)
               for i in range(clients)]
    while len(connected) < clients:
        gevent.sleep(0.01)
    gevent.sleep(0.1)  # the handlers are back in recv
    return [server, spawned, release]


def self_view():
    """The engine's in-process view, in the command's JSON terms."""
    records = inspect.snapshot()
    threads = inspect.threads()
    greenlets = []
    for r in records:
        frames = r["python_frames"]
        greenlets.append({
            "id": r["id"], "parent_id": r["parent_id"], "state": r["state"],
            "name": r["name"], "saved_bytes": r["saved_bytes"],
            "function": frames[0]["function"] if frames else None,
            "frames": [f["function"] for f in frames]})
    return {"pid": os.getpid(), "greenlets": greenlets,
            "saved_bytes": sum(t["saved_bytes"] for t in threads)}


def holds_still(kind):
    """Whether the main thread has reached its final wait: blocked on a lock
    (plain), or with its main greenlet suspended in the hub (gevent)."""
    if kind == "gevent":
        return any(r["main"] and r["state"] == "suspended"
                   for r in inspect.snapshot())
    if kind == "busy":
        return any(r["name"] == "spinner" and r["state"] == "running"
                   for r in inspect.snapshot())
    frame = sys._current_frames().get(threading.main_thread().ident)
    functions = []
    while frame is not None:
        functions.append(frame.f_code.co_name)
        frame = frame.f_back
    return functions[:3] == ["wait", "wait", "main_program"]


def answer_stdin(kind):
    while not holds_still(kind):
        time.sleep(0.01)
    print("ready %d" % os.getpid(), flush=True)
    for _ in sys.stdin:
        print(json.dumps(self_view()), flush=True)
    os._exit(0)  # standard input closed: the test is over


def main_program():
    kind = sys.argv[1]
    if kind in ("plain", "busy"):
        keep = build_plain()
    else:
        keep = build_gevent(int(sys.argv[2]))
    threading.Thread(target=answer_stdin, args=(kind,), daemon=True).start()
    if kind == "busy":
        spinner = greenlet(spin)
        inspect.set_name(spinner, "spinner")
        spinner.switch()  # never comes back
    if kind == "plain":
        threading.Event().wait()  # main stays the running greenlet
    else:
        import gevent
        gevent.wait()  # main suspended; the hub waits in its loop
    return keep


if __name__ == "__main__":
    main_program()
