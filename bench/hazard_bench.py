"""What the hazard audit and the watches cost, measured in one run.

1. The audit's time against the size of the process: children that park
   PARKED greenlets (each with a saved stack) and hold HEAP megabytes of
   malloc'd memory (bytearrays, allocated by malloc, not by CPython's
   small-object allocator), each timing greenlet.inspect.audit() ROUNDS
   times; the median, and the time per megabyte of heap scanned.
2. A switch with a watch set against one without, side by side in one
   child: a ping-pong between two greenlets, while a third, suspended,
   has a watched address (the engine refreshes the watches after every
   switch while any exists); the ratio of the medians. Skipped, and said,
   where perf events are not available.

Usage:
    PYTHONPATH=python /usr/bin/python3 bench/hazard_bench.py
"""
import statistics
import subprocess
import sys

AUDIT_CHILD = r"""
import statistics, sys, time
from greenlet import greenlet, getcurrent, inspect
parked, megabytes, rounds = (int(a) for a in sys.argv[1:4])
main = getcurrent()
def deeper(depth):
    return main.switch() if depth == 0 else deeper(depth - 1)
keep = [greenlet(deeper) for _ in range(parked)]
for g in keep:
    g.switch(10)
heap = [bytearray(64 * 1024) for _ in range(megabytes * 16)]
times = []
for _ in range(rounds):
    start = time.perf_counter()
    hits = inspect.audit()
    times.append(time.perf_counter() - start)
    assert hits == [], hits
print(statistics.median(times) * 1000)
"""

WATCH_CHILD = r"""
import statistics, sys, time
from greenlet import greenlet, getcurrent, inspect, _greenlet
switches, rounds = int(sys.argv[1]), int(sys.argv[2])
main = getcurrent()
def park():
    main.switch()
parked = greenlet(park)
parked.switch()
def pong():
    while True:
        main.switch()
partner = greenlet(pong)
partner.switch()
def ping_pong():
    start = time.perf_counter()
    for _ in range(switches):
        partner.switch()
    return (time.perf_counter() - start) / (2 * switches) * 1e9
address = [r for r in _greenlet._records()
           if r["greenlet"] is parked][0]["stack_pointer"] + 64
plain, watched = [], []
for _ in range(rounds):
    plain.append(ping_pong())
    try:
        _greenlet._watch_add(parked, address, None)
    except OSError as error:
        print("unavailable", error)
        sys.exit(0)
    watched.append(ping_pong())
    inspect.unwatch()
print(statistics.median(plain), statistics.median(watched))
"""


def run(child, *arguments):
    completed = subprocess.run([sys.executable, "-c", child]
                               + [str(a) for a in arguments],
                               capture_output=True, text=True, timeout=600)
    if completed.returncode != 0:
        sys.exit("hazard_bench: a child failed:\n" + completed.stderr)
    return completed.stdout.strip()


def main():
    print("audit, median of 15 (ms); the heap is malloc'd bytearrays")
    print("%10s %10s %10s %12s" % ("greenlets", "heap MB", "audit ms",
                                   "ms per MB"))
    for parked, megabytes in ((100, 10), (1000, 10), (10000, 10),
                              (1000, 100), (1000, 400)):
        ms = float(run(AUDIT_CHILD, parked, megabytes, 15))
        print("%10d %10d %10.1f %12.3f" % (parked, megabytes, ms,
                                          ms / megabytes))
    out = run(WATCH_CHILD, 200000, 7)
    if out.startswith("unavailable"):
        print("switch with a watch set: not measured,", out)
        return
    plain, watched = (float(x) for x in out.split())
    print("switch, median of 7 rounds of 400,000 switches: %.1f ns without "
          "a watch, %.1f ns with one set: ratio %.2f"
          % (plain, watched, watched / plain))


if __name__ == "__main__":
    main()
