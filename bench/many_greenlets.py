"""A process with many greenlets that holds still: the workload that
bench/gltop_bench.c watches to time gltop at scale (issue 5: one refresh
under 50 ms with 100,000 greenlets).

The mix is meant to look like a server's, so that the monitor segment has
what a real one has, and the model and the view do the work they would:

- a tree: PARENTS "connection" greenlets, each the parent of an equal share
  of the rest (greenlet parents, so gltop's tree view nests them);
- most children suspended, a few frames deep, at one of four functions
  (read_request, wait_for_lock, backoff, fetch_row), so that many records
  share a place and some differ;
- every tenth child named with greenlet.inspect.set_name ("handler-N"),
  the rest shown by their type's name;
- every twentieth child created but never started (state "new");
- stacks of different depths, so the HEAP column has different values to
  sort by.

It prints "ready PID" once everything is in place, then blocks reading
stdin and exits when stdin closes (the bench closes it; a crashed bench
leaves no orphan). Usage:

    PYTHONPATH=python /usr/bin/python3 bench/many_greenlets.py [N]

N (default 100000) counts every greenlet made here, parents included; the
main greenlet is one more.
"""
import os
import sys

from greenlet import getcurrent, greenlet, inspect

PARENTS = 100
NAMED_EVERY = 10      # one child in ten has a name
UNSTARTED_EVERY = 20  # one child in twenty is never started
MAX_DEPTH = 4         # children suspend 0 to 3 calls below their place


def through_c(function, depth):
    """Calls function(depth - 1) by way of a C function (map): since
    CPython 3.11 a Python-to-Python call takes no C stack, so without this
    every saved stack would be the same size whatever the depth."""
    return next(map(function, (depth - 1,)))


def read_request(depth):
    """Suspends `depth` frames down, so that saved stacks differ."""
    if depth:
        return through_c(read_request, depth)
    return getcurrent().parent.switch()


def wait_for_lock(depth):
    if depth:
        return through_c(wait_for_lock, depth)
    return getcurrent().parent.switch()


def backoff(depth):
    if depth:
        return through_c(backoff, depth)
    return getcurrent().parent.switch()


def fetch_row(depth):
    if depth:
        return through_c(fetch_row, depth)
    return getcurrent().parent.switch()


PLACES = (read_request, wait_for_lock, backoff, fetch_row)


def handle(index):
    """A child's body: a few frames of its own, then one of the places."""
    place = PLACES[index % len(PLACES)]
    return place(index // len(PLACES) % MAX_DEPTH)


def serve(first, count):
    """A parent's body: starts its children (each suspends back here, so
    their parent is this greenlet), then suspends to main."""
    children = []
    for index in range(first, first + count):
        child = greenlet(handle, parent=getcurrent())
        if index % NAMED_EVERY == 0:
            inspect.set_name(child, "handler-%d" % index)
        if index % UNSTARTED_EVERY != 0:
            child.switch(index)
        children.append(child)
    getcurrent().parent.switch()
    return children


def build(total):
    """Makes `total` greenlets in PARENTS trees; returns them (held, so
    that none is collected)."""
    parents = min(PARENTS, total)
    children = total - parents
    everything = []
    first = 0
    for number in range(parents):
        share = children // parents + (number < children % parents)
        parent = greenlet(serve)
        inspect.set_name(parent, "connection-%d" % number)
        parent.switch(first, share)
        everything.append(parent)
        first += share
    return everything


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    sys.setrecursionlimit(10000)
    keep = build(total)
    print("ready", os.getpid(), flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    del keep


if __name__ == "__main__":
    main()
