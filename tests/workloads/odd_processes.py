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
    python tests/workloads/odd_processes.py hazard DIRECTORY
        imports stack_hazards (tests/hazards/stack_hazards.c, built in
        DIRECTORY) and leaves greenlet "keeper" suspended inside its
        keep_and_call, whose buffer a global points to; waits for standard
        input to close, storing through that pointer at each line "write".
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
    if kind != "hazard":
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
    elif kind == "hazard":
        sys.path.insert(0, sys.argv[2])
        import stack_hazards
        keeper = greenlet(lambda: stack_hazards.keep_and_call(
            main_greenlet.switch))
        inspect.set_name(keeper, "keeper")
        keeper.switch()
        print("ready %d" % os.getpid(), flush=True)
        # Holds still until the test is over; each line "write" stores
        # through the kept pointer (the watch's catch), answered "wrote".
        for line in sys.stdin:
            if line.strip() == "write":
                stack_hazards.write_kept()
                print("wrote", flush=True)
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
