"""What the monitor segment costs a switching program, measured side by side
in one run: the Python-level switch with the monitor off
(GREENLET_MONITOR=0), on with no reader, and on with a reader attached
(this script reading the process's segment five times a second, as a
viewer refreshing at 5 Hz would; the process publishes at least every
GL_MONITOR_REFRESH_MS while one is attached).

Each measurement is a child process that parks PARKED greenlets (so that
every publication has real work: a record, a place and a name per
greenlet) and then times a ping-pong between two greenlets: the mean over
all SWITCHES, which last seconds, so that the publications made meanwhile
are in the mean (a best-of would hide them). Modes are
interleaved round by round, and the median per mode is reported with its
ratio to "off". Usage:

    PYTHONPATH=python /usr/bin/python3 bench/monitor_bench.py [--rounds N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

CHILD = r"""
import sys, time
from greenlet import greenlet, getcurrent
parked, switches = int(sys.argv[1]), int(sys.argv[2])
main = getcurrent()
def park():
    main.switch()
keep = [greenlet(park) for _ in range(parked)]
for g in keep:
    g.switch()
def pong():
    while True:
        main.switch()
partner = greenlet(pong)
partner.switch()
print("ready", flush=True)
sys.stdin.readline()            # the reader is attached, if there is one
start = time.perf_counter_ns()
for _ in range(switches // 2):
    partner.switch()
print((time.perf_counter_ns() - start) / switches, flush=True)
"""

MODES = ("off", "on, no reader", "on, reader attached")


def measure(mode, parked, switches):
    environment = dict(os.environ)
    if mode == "off":
        environment["GREENLET_MONITOR"] = "0"
    else:
        environment.pop("GREENLET_MONITOR", None)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(parked), str(switches)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=environment)
    assert child.stdout.readline() == "ready\n"
    stop = threading.Event()
    reads = []
    reader = None
    if mode == "on, reader attached":
        from greenlet._greenlet import _monitor_read

        def watch():
            while not stop.is_set():
                snapshot = _monitor_read(child.pid, 1000)
                reads.append(len(snapshot["greenlets"]))
                stop.wait(0.2)
        reader = threading.Thread(target=watch)
        reader.start()
        while not reads:
            time.sleep(0.01)
    child.stdin.write("go\n")
    child.stdin.flush()
    nanoseconds = float(child.stdout.readline())
    stop.set()
    if reader:
        reader.join()
        # The reader must have seen the whole process, or it measured
        # nothing: every parked greenlet, the pair, and the main greenlet.
        assert reads[-1] == parked + 2, reads[-1]
    child.stdin.close()
    child.wait()
    return nanoseconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parked", type=int, default=10000)
    parser.add_argument("--switches", type=int, default=40000000)
    options = parser.parse_args()
    results = {mode: [] for mode in MODES}
    for round_number in range(options.rounds):
        for mode in MODES:
            results[mode].append(measure(mode, options.parked,
                                         options.switches))
        print("round %d/%d done" % (round_number + 1, options.rounds),
              file=sys.stderr)
    base = statistics.median(results["off"])
    print("monitor cost: Python switch, %d parked greenlets, median of %d "
          "rounds (each the mean of %d switches)"
          % (options.parked, options.rounds, options.switches))
    print("%-22s %10s %8s" % ("mode", "ns/switch", "ratio"))
    for mode in MODES:
        median = statistics.median(results[mode])
        print("%-22s %10.1f %8.3f" % (mode, median, median / base))


if __name__ == "__main__":
    main()
