"""greenlet._watch -- hardware write watchpoints on the stack addresses the
hazard audit found (greenlet.inspect.watch and the rest re-export it).

A hit of the audit says that a word somewhere points into a suspended
greenlet's saved stack; a watch says whether anything writes through it.
The engine (inspect/hazard_watch.c) arms a debug register of the CPU on
the address in every thread while the greenlet's bytes there are saved,
and records each write that is not the running greenlet's own: a write
from another thread, or from the code of the object that holds the
pointer. A record names the writing thread, its native backtrace from the
store on, and the greenlet whose stack the address belongs to. Linux perf
events lend the debug registers; where they cannot (a virtual machine or
container without them, perf_event_paranoid), watch() raises
WatchUnavailable and says why, and the audit still works.
"""

import threading

from ._greenlet import (_records, _watch_add, _watch_clear, _watch_list,
                        _watch_writes)

MAX_WATCHES = 4  # GL_WATCH_MAX: the debug registers of one thread
KINDS = {1: "from another thread", 2: "by the holder's code"}


class WatchUnavailable(OSError):
    """Hardware watchpoints cannot be used in this process; the message
    says why."""


def _watch_target(hit):
    """(greenlet, holder object) to watch for an audit hit: its likely
    greenlet, or else its first candidate whose bytes are saved (the rule
    of the monitor's watch request too: watches.c, watch_target)."""
    if hit["greenlet"] is not None:
        greenlet = hit["greenlet"]
    else:
        saved = [c for c in hit["candidates"]
                 if c["saved"] and c["greenlet"] is not None]
        greenlet = saved[0]["greenlet"] if saved else None
    return greenlet, hit["object"] if hit["place"] == "object" else None


def watch(hits=None):
    """Watches the addresses of audit hits (`hits`, by default a new
    audit()) for writes, at most MAX_WATCHES at once, and returns what it
    watches (as watching() does). Writes are then collected by
    watch_writes(). Raises WatchUnavailable when this machine lends no
    hardware watchpoints."""
    if hits is None:
        from ._audit import audit
        hits = audit()
    for hit in hits:
        greenlet, holder = _watch_target(hit)
        if greenlet is None or greenlet.dead:
            continue
        try:
            _watch_add(greenlet, hit["pointer"], holder)
        except OSError as error:
            if "no free watchpoint" in str(error):
                break  # the others stay unwatched
            raise WatchUnavailable(str(error)) from None
    return watching()


def unwatch():
    """Stops every watch. Writes caught so far stay in watch_writes()."""
    _watch_clear()


def watching():
    """The watches now: a dict each with address, greenlet_id,
    thread_native_id (the greenlet's thread), armed (its bytes at the
    address are saved now, so writes are trapped), own_writes (writes by
    the greenlet using the address now, counted and not recorded) and
    own_given_up (after many of those its thread is no longer trapped)."""
    return [{"address": address, "greenlet_id": greenlet_id,
             "thread_native_id": thread, "armed": bool(armed),
             "own_writes": own, "own_given_up": bool(given_up)}
            for address, greenlet_id, thread, armed, own, given_up
            in _watch_list()]


def watch_writes():
    """The writes caught through watched addresses, oldest first (the
    first 256 of the process): a dict each with address, greenlet_id and
    greenlet (None once gone), thread_native_id (the greenlet's thread),
    writer_native_id and writer_name (the thread that wrote), kind ("from
    another thread", or "by the holder's code" in the greenlet's own
    thread), saved (the greenlet's bytes there were on the heap: the write
    went to another greenlet's data, or will be lost), time (seconds, the
    monotonic clock) and frames (the writer's native backtrace, innermost
    first: function, offset, object, ip)."""
    caught, _dropped = _watch_writes()
    greenlets = {r["id"]: r["greenlet"] for r in _records()}
    names = {t.native_id: t.name for t in threading.enumerate()}
    return [{"address": address, "greenlet_id": greenlet_id,
             "greenlet": greenlets.get(greenlet_id),
             "thread_native_id": owner, "writer_native_id": writer,
             "writer_name": names.get(writer),
             "kind": KINDS.get(kind, "?"), "saved": bool(saved),
             "time": time_ns / 1e9, "frames": frames}
            for address, greenlet_id, owner, writer, kind, saved, time_ns,
            frames in caught]


def _frame_text(frame):
    name = frame["function"] or "0x%x" % frame["ip"]
    where = frame["object"].rsplit("/", 1)[-1] if frame["object"] else "?"
    return "%s (%s)" % (name, where)


def _describe_write(write):
    """One line for a caught write, for logs."""
    writer = ("thread %s%s" % (write["writer_native_id"],
                               " (%s)" % write["writer_name"]
                               if write["writer_name"] else ""))
    return ("greenlet hazard: %s wrote to 0x%x, %s, in the %sstack of "
            "greenlet #%d, from %s" % (
                writer, write["address"], write["kind"],
                "saved " if write["saved"] else "",
                write["greenlet_id"],
                " < ".join(_frame_text(f) for f in write["frames"][:6])
                or "an unknown place"))
