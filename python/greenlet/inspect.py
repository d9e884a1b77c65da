"""greenlet.inspect -- what the greenlets of this process are doing.

snapshot() lists every greenlet of every thread, as plain data taken from
the switching engine's records: ids, parents, threads, states, the stack
bytes each one holds on the heap and in place, counters, a name, and the
Python frames where each one is. format_tree() and to_json() render a
snapshot.

    >>> from greenlet import inspect
    >>> print(inspect.format_tree())        # doctest: +SKIP
    thread 1 (MainThread, native id 4242)
      #1 running  main greenlet  heap 0 B  at <module> (app.py:10)
        #2 suspended  worker-1  heap 944 B  at wait (app.py:4)

A snapshot holds no references to greenlets or frames: it is safe to keep,
print, or send elsewhere.

native_backtrace(g) walks the C frames of a suspended greenlet with
libunwind, reading the part of its stack that is saved on the heap from the
heap copy; read_stack(g, address, size) reads its stack as it sees it; and
owner(address) tells which greenlets' stacks hold an address, and whether
the bytes there are live or saved. They take greenlets of any thread:
holding the GIL, as they do, keeps every other thread from switching.

audit() finds the hazard of stack copying: words kept outside the engine
(in the writable data of loaded shared objects, other threads' stacks,
malloc's heap) that point into the saved stack of a suspended greenlet,
as C extensions leave them when they keep a pointer to a stack buffer
across a switch; audit_every() runs it periodically (greenlet._audit).

Processes publish their greenlets for tools outside them (gltop, and
`python -m greenlet.inspect PID`) in the monitor segment; set_name() and
record_spawn_sites() add to what those tools show.
"""

import json
import sys
import threading

from ._audit import _describe_hazard, _group_by_holder, audit, audit_every
from ._watch import (WatchUnavailable, unwatch, watch, watch_writes,
                     watching)
from ._greenlet import (_labels_of, _native_backtrace, _read_stack,
                        _record_spawn_sites, _records, _set_name,
                        _thread_idents, _threads)

__all__ = ["snapshot", "threads", "set_name", "record_spawn_sites",
           "format_tree", "to_json",
           "native_backtrace", "read_stack", "owner", "audit", "audit_every",
           "watch", "unwatch", "watching", "watch_writes", "WatchUnavailable",
           "report"]

def set_name(greenlet, name):
    """Label a greenlet in snapshots and in the monitor segment (its repr,
    or its type's name outside the process, is used otherwise). None
    removes the label."""
    _set_name(greenlet, None if name is None else str(name))


def record_spawn_sites(on=True):
    """Record, from now on, where each new greenlet is created (function,
    file and line of the innermost Python frame); snapshots and the
    monitor segment show it as the spawn site. Costs a little per
    creation, so it is off unless turned on here or by GREENLET_SPAWN_SITES=1
    in the environment. Returns whether it was on."""
    return _record_spawn_sites(bool(on))


_OWN_FILES = {__file__, __file__.replace("inspect.py", "_inspect_command.py")}


def _frames_of(frame, limit=200):
    while frame is not None and frame.f_code.co_filename in _OWN_FILES:
        frame = frame.f_back  # the snapshot's and the command's own frames
    frames = []
    while frame is not None and len(frames) < limit:
        code = frame.f_code
        if code.co_filename in _OWN_FILES:
            break  # the command that runs the script: not the script's
        frames.append({"function": code.co_name, "file": code.co_filename,
                       "line": frame.f_lineno})
        frame = frame.f_back
    return frames


def _running_frames_by_native_id():
    """(name, the frame it runs now) of each thread, by its native id; the
    name is None for threads that the threading module does not list."""
    current = sys._current_frames()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return {native_id: (names.get(ident), current.get(ident))
            for native_id, ident in _thread_idents().items()}


def _describe(record, threads):
    greenlet = record.pop("greenlet")
    name_of_thread, running_frame = threads.get(record["thread_native_id"],
                                                (None, None))
    if record["thread_native_id"] in threads and name_of_thread is None:
        name_of_thread = "unnamed"  # alive, but threading does not list it
    record["thread_name"] = name_of_thread  # None: the thread has exited
    label, record["spawn_site"] = (_labels_of(greenlet) if greenlet is not None
                                   else (None, None))
    if greenlet is None:
        record["name"] = "greenlet #%d" % record["id"]
    elif label is not None:
        record["name"] = label
    elif record["main"]:
        record["name"] = "main greenlet"
    else:
        record["name"] = repr(greenlet)
    state = record["state"]
    if state == "suspended":
        start, saved = record["stack_pointer"], record["saved_bytes"]
        record["saved_regions"] = [
            {"start": start, "end": start + saved, "bytes": saved}
        ] if saved else []
        record["live_stack_bytes"] = record["stack_stop"] - start - saved
        frame = greenlet.gr_frame if greenlet is not None else None
    else:
        record["saved_regions"] = []
        record["live_stack_bytes"] = None  # running: it moves; else none
        frame = running_frame if state == "running" else None
    record["python_frames"] = _frames_of(frame)
    return record


def snapshot():
    """Every greenlet of every thread, as a list of dicts (see the module
    docstring). Python frames are innermost first."""
    records = _records()
    threads = _running_frames_by_native_id()
    return [_describe(record, threads) for record in records]


def threads():
    """Every thread that has used greenlets, as dicts: thread (the engine's
    number), native_id, exited, switches, current_id, saved_bytes (stack
    bytes its greenlets hold on the heap now), saved_bytes_peak, greenlets
    (records of the thread)."""
    return _threads()


def _where(record):
    if not record["python_frames"]:
        return ""
    innermost = record["python_frames"][0]
    return "  at %s (%s:%d)" % (innermost["function"], innermost["file"],
                                innermost["line"])


def format_tree(records=None):
    """A snapshot as text: per thread, each greenlet under its parent."""
    if records is None:
        records = snapshot()

    def heading(thread, first_root):
        return "thread %d (%s, native id %d)" % (
            thread, first_root["thread_name"] or "exited",
            first_root["thread_native_id"])
    return "\n".join(_tree_lines(records, heading, _where))


def _tree_lines(records, heading, where):
    """Lines of a tree of greenlet records (dicts with id, parent_id,
    thread, state, name, saved_bytes): per thread, heading(thread, first
    root record), then each greenlet under its parent, with where(record)
    at the end of its line. Shared with the command's view of other
    processes."""
    by_id = {record["id"]: record for record in records}
    children = {}
    for record in records:
        children.setdefault(record["parent_id"], []).append(record)
    lines = []

    def show(record, depth):
        lines.append("%s#%d %s%s  %s  heap %d B%s" % (
            "  " * depth, record["id"], record["state"],
            "  HAZARD" if record.get("hazard") else "", record["name"],
            record["saved_bytes"], where(record)))
        for child in sorted(children.get(record["id"], []),
                            key=lambda r: r["id"]):
            show(child, depth + 1)

    roots = [r for r in records if r["parent_id"] not in by_id]
    for thread in sorted({r["thread"] for r in roots}):
        first = min((r for r in roots if r["thread"] == thread),
                    key=lambda r: r["id"])
        lines.append(heading(thread, first))
        for root in sorted((r for r in roots if r["thread"] == thread),
                           key=lambda r: r["id"]):
            show(root, 1)
    return lines


def to_json(records=None, **dumps_options):
    """A snapshot as JSON text."""
    return json.dumps(snapshot() if records is None else records,
                      **dumps_options)


def native_backtrace(greenlet):
    """The C frames of a suspended greenlet (of any thread), innermost
    first: dicts with ip, sp (the frame's stack pointer), function, offset
    (from the function's start) and object (the shared object's path).
    Raises ValueError if it is not suspended, RuntimeError if the walk did
    not reach the greenlet's root frame."""
    frames, reached_root = _native_backtrace(greenlet)
    if not reached_root:
        raise RuntimeError("the unwinder stopped before the greenlet's root "
                           "frame, after %d frames" % len(frames))
    return frames


def read_stack(greenlet, address, size):
    """`size` bytes at `address` as a suspended greenlet (of any thread)
    sees them: saved bytes from its heap copy, the rest from the thread's stack.
    The range must lie within the greenlet's stack (ValueError)."""
    return _read_stack(greenlet, address, size)


def owner(address, records=None):
    """The greenlets whose stacks hold `address`, as dicts with id, name,
    thread and where ("live": in place on the thread's stack; "saved": in
    the greenlet's heap copy, while the thread's stack there holds another
    greenlet's bytes). A running greenlet's stack reaches from its top
    down to the end of its thread's stack. An empty list: no greenlet's
    stack. The live owner, if any, comes first."""
    if records is None:
        records = snapshot()
    found = []
    for record in records:
        stop = record["stack_stop"]
        if record["state"] == "suspended":
            start = record["stack_pointer"]
            if not start <= address < stop:
                continue
            saved_end = start + record["saved_bytes"]
            where = "saved" if address < saved_end else "live"
        elif (record["state"] == "running"
              and record["thread_stack_low"] <= address < stop
              and record["thread_stack_low"]):
            where = "live"
        else:
            continue
        found.append({"id": record["id"], "name": record["name"],
                      "thread": record["thread"], "where": where,
                      "stack_stop": stop})
    # The innermost stack first: the smallest range that holds it.
    found.sort(key=lambda item: item["stack_stop"])
    running = [item for item in found if item["where"] == "live"]
    return (running[:1] + [item for item in found if item not in running[:1]]
            if running else found)


def report(records=None, thread_records=None):
    """A report of the process's greenlets as text: counts, heap-held stack
    bytes (now and peak, per thread), the tree, and each greenlet's Python
    stack; native stacks for the suspended greenlets of the calling
    thread. This is what `python -m greenlet.inspect run` prints."""
    if records is None:
        records = snapshot()
    if thread_records is None:
        thread_records = threads()
    by_state = {}
    for record in records:
        by_state[record["state"]] = by_state.get(record["state"], 0) + 1
    alive = sum(by_state.get(state, 0) for state in ("new", "running",
                                                     "suspended"))
    lines = ["greenlets alive: %d (%s)" % (alive, ", ".join(
        "%s %d" % (state, by_state[state]) for state in
        ("running", "suspended", "new", "dead") if state in by_state))]
    lines.append("heap-held stack bytes: now %d, peak %d (sum of threads' peaks)"
                 % (sum(t["saved_bytes"] for t in thread_records),
                    sum(t["saved_bytes_peak"] for t in thread_records)))
    for t in thread_records:
        lines.append("  thread %d (native id %d%s): now %d, peak %d, %d switches"
                     % (t["thread"], t["native_id"],
                        ", exited" if t["exited"] else "", t["saved_bytes"],
                        t["saved_bytes_peak"], t["switches"]))
    lines += ["", format_tree(records), "", "stacks:"]
    natives = _native_stacks()
    for record in records:
        if record["state"] == "dead":
            continue
        lines += _stack_lines(record, record["python_frames"],
                              natives.get(record["id"], []))
    return "\n".join(lines)


def _stack_lines(record, python_frames, native_frames, notes=()):
    """A greenlet's stacks as report lines (shared with the command's view
    of other processes): a heading, Python frames, native frames, notes."""
    lines = ["  #%d %s (%s)" % (record["id"], record["name"],
                                record["state"])]
    for frame in python_frames:
        lines.append("    %s (%s:%s)" % (frame["function"], frame["file"],
                                        frame["line"]))
    for frame in native_frames:
        lines.append("    [native] %s+%#x (%s)" % (
            frame["function"] or "??", frame["offset"] or 0,
            frame["object"]))
    lines += ["    (%s)" % note for note in notes]
    return lines


def _native_stacks():
    """Native frames of the suspended greenlets, by record id."""
    stacks = {}
    for record in _records():
        greenlet = record["greenlet"]
        if record["state"] != "suspended" or greenlet is None:
            continue
        try:
            stacks[record["id"]] = native_backtrace(greenlet)
        except (ValueError, RuntimeError):
            pass  # a main greenlet, or a walk that stopped early
    return stacks


if __name__ == "__main__":
    from ._inspect_command import main
    sys.exit(main())
