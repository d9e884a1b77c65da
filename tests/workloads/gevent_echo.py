"""A gevent workload for the demo and for inspection: a TCP echo server on
127.0.0.1 with client greenlets that talk to it for a few seconds. Halfway
through it sends itself SIGUSR1, so that, run under
`python -m greenlet.inspect run`, it prints a report while everything is
busy; another report follows at exit.

    python -m greenlet.inspect run tests/workloads/gevent_echo.py [--clients N] [--seconds S]

With --hog-every S, a greenlet named "hog" computes for --hog-seconds
without yielding every S seconds: it blocks all the others meanwhile,
which gltop flags (B). Greenlets are named for the tools: "client N",
"echo PORT" (a handler, by its client's port), "hog".
"""
import argparse
import os
import signal
import time

import gevent
import gevent.server
import gevent.socket
from greenlet import inspect


def echo(sock, address):
    inspect.set_name(gevent.getcurrent(), "echo %d" % address[1])
    with sock:
        while True:
            data = sock.recv(1024)
            if not data:
                return
            sock.sendall(data)


def client(port, deadline, counts, index):
    sock = gevent.socket.create_connection(("127.0.0.1", port))
    with sock:
        while gevent.get_hub().loop.now() < deadline:
            message = b"client %d says hello" % index
            sock.sendall(message)
            assert sock.recv(1024) == message
            counts[index] += 1
            gevent.sleep(0.01)


def hog(every, seconds):
    """Now and then, a long computation that never yields."""
    while True:
        gevent.sleep(every)
        busy_until = time.monotonic() + seconds
        while time.monotonic() < busy_until:
            sum(range(10000))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--hog-every", type=float, default=0,
                        help="seconds between the hog's computations "
                        "(default: no hog)")
    parser.add_argument("--hog-seconds", type=float, default=3.0)
    options = parser.parse_args()
    server = gevent.server.StreamServer(("127.0.0.1", 0), echo)
    server.start()
    deadline = gevent.get_hub().loop.now() + options.seconds
    counts = [0] * options.clients
    clients = [gevent.spawn(client, server.server_port, deadline, counts, i)
               for i in range(options.clients)]
    for index, spawned in enumerate(clients):
        inspect.set_name(spawned, "client %d" % index)
    if options.hog_every:
        inspect.set_name(gevent.spawn(hog, options.hog_every,
                                      options.hog_seconds), "hog")
    gevent.spawn_later(options.seconds / 2, os.kill, os.getpid(),
                       signal.SIGUSR1)
    gevent.joinall(clients, raise_error=True)
    server.stop()
    print("gevent_echo: %d clients, %d round trips in %.1f s" % (
        options.clients, sum(counts), options.seconds))


if __name__ == "__main__":
    main()
