"""Debian's gevent (compiled against greenlet 2.0's C API) on this greenlet:
1,000 greenlets, queues, events, timeouts, pools and a TCP echo server
with clients on 127.0.0.1, in a subprocess with warnings as errors."""
import os
import subprocess
import sys
import textwrap

from package_under_test import PACKAGE_ROOT, require_gevent

WORKLOAD = textwrap.dedent("""
    import gevent, gevent.event, gevent.pool, gevent.queue, gevent.server
    import gevent.socket, greenlet
    print(greenlet.__file__)

    def work(i):
        gevent.sleep(0.001 * (i % 10))
        return i * 2

    jobs = [gevent.spawn(work, i) for i in range(1000)]
    gevent.joinall(jobs, raise_error=True)
    assert [job.value for job in jobs] == [i * 2 for i in range(1000)]

    queue = gevent.queue.Queue()
    def produce():
        for i in range(100):
            queue.put(i)
        queue.put(None)
    gevent.spawn(produce)
    assert list(iter(queue.get, None)) == list(range(100))

    event = gevent.event.Event()
    gevent.spawn_later(0.01, event.set)
    assert event.wait(2)

    try:
        with gevent.Timeout(0.01):
            gevent.sleep(2)
        raise AssertionError("no timeout")
    except gevent.Timeout:
        pass

    pool = gevent.pool.Pool(10)
    assert sum(pool.map(lambda x: x + 1, range(100))) == 5050

    def echo(sock, address):
        data = sock.recv(100)
        sock.sendall(data)
        sock.close()

    server = gevent.server.StreamServer(("127.0.0.1", 0), echo)
    server.start()
    def client(i):
        sock = gevent.socket.create_connection(("127.0.0.1", server.server_port))
        sock.sendall(b"hello %d" % i)
        reply = sock.recv(100)
        sock.close()
        return reply
    clients = [gevent.spawn(client, i) for i in range(100)]
    gevent.joinall(clients, raise_error=True)
    assert [c.value for c in clients] == [b"hello %d" % i for i in range(100)]
    server.stop()
    print("gevent workload ok")
""")


def test_gevent_workload_runs_on_this_greenlet():
    require_gevent()
    package_root = PACKAGE_ROOT
    environment = dict(os.environ, PYTHONPATH=package_root)
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", WORKLOAD],
        env=environment, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith(package_root)
    assert lines[-1] == "gevent workload ok"
    assert completed.stderr == ""
