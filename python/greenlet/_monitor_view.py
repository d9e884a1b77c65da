"""Other processes' greenlets, read from their monitor segments: the data
and the text behind `python -m greenlet.inspect` and its PID argument.

read_process(pid) returns what the process published, as plain data;
stacks_of(pid, ids) asks it for the full stacks of some greenlets;
audit_of(pid) asks it to run the hazard audit (greenlet.inspect.audit). Both
raise MonitorError (from greenlet._greenlet), whose args[0] names what went
wrong: GL_ENOPROCESS, GL_ENOMONITOR, GL_EPERM, GL_EVERSION, GL_ECORRUPT,
GL_ETIMEDOUT. The process does the work (it publishes when a reader
attaches, and answers requests): nothing here stops or traces it.
"""
import os

from ._greenlet import (MonitorError, _MONITOR_ANSWER_NO_SUCH_GREENLET,
                        _MONITOR_AUDIT, _MONITOR_WATCH,
                        _MONITOR_ANSWER_OK, _MONITOR_ANSWER_TRUNCATED,
                        _MONITOR_ANSWER_UNAVAILABLE, _MONITOR_NATIVE_STACK,
                        _MONITOR_PYTHON_STACK, _monitor_processes,
                        _monitor_read, _monitor_request)
from ._audit import _group_by_holder
from .inspect import _stack_lines, _tree_lines

__all__ = ["MonitorError", "processes", "read_process", "stacks_of",
           "audit_of", "format_process", "format_listing", "format_stacks",
           "format_audit"]

ANSWER_STATUS = {
    _MONITOR_ANSWER_OK: "ok",
    _MONITOR_ANSWER_NO_SUCH_GREENLET: "the process has no such greenlet now",
    _MONITOR_ANSWER_UNAVAILABLE: "the process cannot answer (no runtime, "
                                 "or it is exiting)",
    _MONITOR_ANSWER_TRUNCATED: "the answer was cut short"}


def processes():
    """Pids of the processes on this machine whose segments we may read,
    without our own."""
    return [pid for pid in _monitor_processes() if pid != os.getpid()]


def command_line(pid):
    """The process's command line, or "?" if it cannot be read."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as stream:
            words = stream.read().split(b"\0")
    except OSError:
        return "?"
    return " ".join(w.decode("utf-8", "replace") for w in words if w) or "?"


def read_process(pid, timeout=2.0):
    """The publication of process `pid` as a dict: pid, runtime, fresh
    (False when the process did not publish within `timeout` seconds and
    this is an older publication), saved_bytes, threads and greenlets
    (lists of dicts; a greenlet's where and spawn_site are dicts with
    function, file and line, or None)."""
    return _monitor_read(pid, max(1, int(timeout * 1000)))


def _parse_answer(text):
    stack = {"python": [], "native": [], "notes": []}
    # "\n" only: a field may hold other line breaks (U+2028, in a path).
    for line in text.split("\n"):
        fields = line.split("\t")
        if fields[0] == "python" and len(fields) == 4:
            stack["python"].append({"function": fields[1], "file": fields[2],
                                    "line": _number(fields[3], 10)})
        elif fields[0] == "native" and len(fields) == 5:
            stack["native"].append({"function": fields[1],
                                    "offset": _number(fields[2], 16),
                                    "object": fields[3],
                                    "ip": _number(fields[4], 16)})
        elif fields[0] == "note" and len(fields) >= 2:
            stack["notes"].append("\t".join(fields[1:]))
    return stack


HAZARD_FIELDS = ("greenlet_id", "holder", "pointer", "start", "end",
                 "object", "symbol", "symbol_offset", "frame",
                 "frame_offset", "frame_object", "state")
HAZARD_NUMBERS = {"greenlet_id": 10, "holder": 16, "pointer": 16,
                  "start": 16, "end": 16, "symbol_offset": 16,
                  "frame_offset": 16}


WRITE_FIELDS = ("greenlet_id", "address", "writer_native_id", "kind",
                "state", "frames")


def _parse_hazards(text):
    """(hits, writes, notes) of an audit's answer."""
    hits, writes, notes = [], [], []
    for line in text.split("\n"):
        fields = line.split("\t")
        # At least the fields of the first version (without "state");
        # later versions may add fields at the end.
        if fields[0] == "hazard" and len(fields) >= len(HAZARD_FIELDS):
            hit = dict(zip(HAZARD_FIELDS, fields[1:]))
            hit.setdefault("state", "saved")
            for name, base in HAZARD_NUMBERS.items():
                hit[name] = _number(hit[name], base)
            for name in ("symbol", "frame", "frame_object"):
                hit[name] = hit[name] or None
            if hit["symbol"] is None:
                hit["symbol_offset"] = None
            if hit["frame"] is None:
                hit["frame_offset"] = None
            hits.append(hit)
        elif fields[0] == "write" and len(fields) >= 1 + len(WRITE_FIELDS):
            write = dict(zip(WRITE_FIELDS, fields[1:]))
            write["greenlet_id"] = _number(write["greenlet_id"], 10)
            write["address"] = _number(write["address"], 16)
            write["writer_native_id"] = _number(write["writer_native_id"],
                                                10)
            writes.append(write)
        elif fields[0] == "note" and len(fields) >= 2:
            notes.append("\t".join(fields[1:]))
    return hits, writes, notes


def _number(text, base):
    try:
        return int(text, base)
    except ValueError:
        return None  # the text comes from another process: never trust it


def stacks_of(pid, ids, timeout=2.0):
    """{id: {"python": [...], "native": [...], "notes": [...]}} for each
    greenlet id, asked of process `pid` one at a time. Frames are innermost
    first; a greenlet the process no longer has gets a note."""
    stacks = {}
    for greenlet_id in ids:
        status, text = _monitor_request(pid, greenlet_id,
                                        _MONITOR_PYTHON_STACK
                                        | _MONITOR_NATIVE_STACK,
                                        max(1, int(timeout * 1000)))
        stack = _parse_answer(text)
        if status != _MONITOR_ANSWER_OK:
            stack["notes"].append(ANSWER_STATUS.get(status, "status %d"
                                                    % status))
        stacks[greenlet_id] = stack
    return stacks


def audit_of(pid, timeout=2.0, watch=False):
    """Asks process `pid` to run the hazard audit (and with `watch`, to
    watch the addresses it finds for writes): (hits, writes, notes), each
    hit a dict with greenlet_id, holder, pointer, start and end (the part
    of the greenlet's stack), state ("saved" or "live"), object, symbol
    and symbol_offset (None when not exported), frame and frame_offset
    (None when unknown); each write caught by the process's watches a
    dict with greenlet_id, address, writer_native_id, kind, state and
    frames (text). Raises MonitorError."""
    kinds = _MONITOR_AUDIT | (_MONITOR_WATCH if watch else 0)
    status, text = _monitor_request(pid, 0, kinds,
                                    max(1, int(timeout * 1000)))
    hits, writes, notes = _parse_hazards(text)
    if status != _MONITOR_ANSWER_OK:
        notes.append(ANSWER_STATUS.get(status, "status %d" % status))
    return hits, writes, notes


def _write_lines(writes):
    return ["  thread %s wrote to 0x%x, %s, in the %s stack of greenlet #%s,"
            " from %s" % (w["writer_native_id"], w["address"] or 0,
                          w["kind"], w["state"], w["greenlet_id"],
                          w["frames"] or "an unknown place")
            for w in writes]


def format_audit(pid, hits, notes, writes=()):
    """The audit's answer as text: per holder, who holds what, and the
    greenlets whose saved stack it points into (the likely one first);
    then the writes the process's watches caught."""
    groups = _group_by_holder(hits)
    caught = (["pid %d: %d write%s caught through watched addresses"
               % (pid, len(writes), "" if len(writes) == 1 else "s")]
              + _write_lines(writes) if writes else [])
    if not groups:
        return "\n".join(["pid %d: no hazard found%s" % (
            pid, "".join("\n  " + note for note in notes
                         if not note.startswith("no hazard")))] + caught)
    lines = ["pid %d: %d hazard%s: words that point into a suspended "
             "greenlet's saved stack" % (pid, len(groups),
                                         "" if len(groups) == 1 else "s")]
    for first, candidates, certain in groups:
        holder = (("%s+0x%x" % (first["symbol"], first["symbol_offset"]))
                  if first["symbol"] else "0x%x" % (first["holder"] or 0))
        lines.append("  %s (%s) holds 0x%x" % (holder, first["object"],
                                              first["pointer"] or 0))
        for index, hit in enumerate(candidates):
            frame = (" in %s+0x%x" % (hit["frame"], hit["frame_offset"] or 0)
                     if hit["frame"] else "")
            label = ("its greenlet" if certain and index == 0
                     else "or greenlet" if certain else "greenlet")
            state = "live" if hit["state"] == "live" else "saved"
            lines.append("    %s #%s: %d bytes into the %s part of its "
                         "stack [0x%x, 0x%x)%s" % (
                             label, hit["greenlet_id"],
                             (hit["pointer"] or 0) - (hit["start"] or 0),
                             state, hit["start"] or 0, hit["end"] or 0,
                             frame))
    lines.extend("  " + note for note in notes)
    return "\n".join(lines + caught)


def _where(record):
    where = record["where"]
    if not where:
        return ""
    return "  at %s (%s:%d)" % (where["function"], where["file"],
                                where["line"])


def format_process(snapshot):
    """A process's publication as text: a summary line, then per thread
    each greenlet under its parent (id, state, name, heap-held bytes,
    where it is)."""
    threads = {t["thread"]: t for t in snapshot["threads"]}
    alive = [g for g in snapshot["greenlets"] if g["state"] != "dead"]
    lines = ["pid %d  %s  %d threads, %d greenlets alive, heap-held stack "
             "bytes %d%s" % (snapshot["pid"], snapshot["runtime"],
                             sum(not t["exited"] for t in threads.values()),
                             len(alive), snapshot["saved_bytes"],
                             "" if snapshot["fresh"] else
                             "  (stale: the process did not publish in time)")]

    def heading(thread, first_root):
        t = threads.get(thread)
        if t is None:
            return "thread %d" % thread
        return "thread %d (%s, native id %d): %d switches, heap %d B" % (
            thread, t["name"] or ("exited" if t["exited"] else "unnamed"),
            t["native_id"], t["switches"], t["saved_bytes"])
    return "\n".join(lines + _tree_lines(snapshot["greenlets"], heading,
                                         _where))


def format_stacks(snapshot, stacks):
    """The stacks that stacks_of() returned, as text, in tree order."""
    lines = ["stacks:"]
    for record in sorted(snapshot["greenlets"], key=lambda r: r["id"]):
        stack = stacks.get(record["id"])
        if stack is None:
            continue
        lines += _stack_lines(record, stack["python"], stack["native"],
                              stack["notes"])
    return "\n".join(lines)


def format_listing(rows):
    """Rows of (pid, snapshot or MonitorError) as a table."""
    lines = ["%7s %7s %9s %12s  %-16s %s" % ("PID", "THREADS", "GREENLETS",
                                             "HEAP BYTES", "RUNTIME",
                                             "COMMAND")]
    for pid, found in rows:
        command = command_line(pid)
        if isinstance(found, MonitorError):
            lines.append("%7d %7s %9s %12s  %-16s %s  [%s]" % (
                pid, "?", "?", "?", "?", command, found.args[0]))
            continue
        threads = sum(not t["exited"] for t in found["threads"])
        alive = sum(g["state"] != "dead" for g in found["greenlets"])
        lines.append("%7d %7d %9d %12d  %-16s %s" % (
            pid, threads, alive, found["saved_bytes"], found["runtime"],
            command))
    return "\n".join(lines)
