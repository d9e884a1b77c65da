"""Processes that behave in ways a watcher must get right, for gltop's
tests. Each prints "ready PID" once it is in the state to watch.

    python tests/workloads/odd_processes.py exec
        makes a greenlet (so it publishes), then on a line of standard
        input runs exec: the pid lives on, its monitor segment does not.
    python tests/workloads/odd_processes.py gil
        makes a greenlet, then holds the GIL in one long C call: its
        monitor thread cannot publish, so it never has.
    python tests/workloads/odd_processes.py alone
        its only other greenlet has finished; the main greenlet computes
        forever: busy, but with no greenlet of its thread to block.
    python tests/workloads/odd_processes.py spawner
        starts a new greenlet every 0.2 s that runs once and parks: new
        greenlets that ran between two looks of a watcher.
"""
import os
import sys
import time

from greenlet import GreenletExit, getcurrent, greenlet, inspect


def parked():
    getcurrent().parent.switch()


def main():
    kind = sys.argv[1]
    main_greenlet = getcurrent()
    first = greenlet(parked)
    inspect.set_name(first, "first")
    first.switch()
    print("ready %d" % os.getpid(), flush=True)
    if kind == "exec":
        sys.stdin.readline()
        os.execv("/bin/sleep", ["sleep", "30"])
    elif kind == "gil":
        sum(range(10 ** 12))  # one C call: the GIL is never let go
    elif kind == "alone":
        first.throw(GreenletExit)  # finished: dead
        while True:
            sum(range(1000))
    elif kind == "spawner":
        keep = []
        for number in range(10 ** 6):
            g = greenlet(parked)
            inspect.set_name(g, "spawned-%d" % number)
            g.switch()
            keep.append(g)
            time.sleep(0.2)
    assert main_greenlet  # kept alive to the end


if __name__ == "__main__":
    main()
