"""greenlet._audit -- the hazard audit (greenlet.inspect.audit and
audit_every, which re-export it): words outside the engine that point into
the saved stack of a suspended greenlet, found by the engine's scan
(inspect/hazard_scan.c) and grouped here per holder, with the greenlet
the word most likely means. A module of its own, importing nothing of
greenlet.inspect, so that GREENLET_AUDIT_EVERY can start the periodic
audit when greenlet is imported without importing greenlet.inspect (which
`python -m greenlet.inspect` must be the first to run).
"""

import sys
import threading

from ._greenlet import _hazard_scan, _records


# gl_hazard_place (inspect/glinspect.h) -> the "place" of a hit.
PLACES = {1: "object", 2: "thread stack", 3: "heap"}


def _group_by_holder(hits):
    """Hits in holder order (several in a row for one holder when several
    greenlets have its address saved) as (holder's first hit, candidates)
    pairs, with the likely candidate first: the greenlet whose C frame at
    that address belongs to the holder's own object (an extension pointing
    at its own stack buffer), else the only one. Each hit is a dict with
    at least "holder", "object" and "frame_object"; the address alone
    cannot tell whose data a word meant when greenlets started at the same
    depth (a hub's handlers), so a group may have no likely one."""
    groups = []
    for hit in hits:
        if groups and groups[-1][0]["holder"] == hit["holder"]:
            groups[-1][1].append(hit)
        else:
            groups.append((hit, [hit]))
    result = []
    for first, candidates in groups:
        own = [c for c in candidates
               if c["frame_object"] and c["frame_object"] == first["object"]]
        likely = (own[0] if len(own) == 1 else
                  candidates[0] if len(candidates) == 1 else None)
        ordered = ([likely] + [c for c in candidates if c is not likely]
                   if likely else candidates)
        result.append((first, ordered, likely is not None))
    return result


def audit():
    """The hazards of stack copying in this process, now: words outside
    the engine that point into the stack of a suspended greenlet, at an
    address another greenlet of its thread has taken (the suspended one's
    bytes there are saved on the heap; the address holds the other's data,
    or nothing in use). A dict per word:

      holder         the word's address
      place          "object": the writable data of a loaded object;
                     "thread stack": the live stack of another thread;
                     "heap": anonymous memory (malloc's heap, say)
      thread         for a thread stack: that thread's native id, else None
      object         the object's path (None elsewhere)
      symbol         the symbol holding the word, or None (not exported)
      symbol_offset  the word's offset in it, or None
      allocation     for the heap: {"start", "size"} of the malloc
                     allocation holding the word, or None if the memory
                     is not a malloc heap's (CPython's object arenas, a
                     library's own mappings)
      pointer        the word's value: a stack address
      candidates     the greenlets that have that address, each a dict:
                     greenlet_id, greenlet (None once gone),
                     thread_native_id, saved (True: its bytes there are on
                     the heap now; False: they are live, in place, and are
                     saved away when a greenlet with the address saved
                     resumes), saved_region {"start", "end"} (the part of
                     its stack, saved or live, holding the address),
                     stack_offset (pointer - start), frame (the C frame
                     whose locals the pointer reaches: function, offset,
                     object, ip, sp; or None)
      greenlet_id, greenlet, thread_native_id, saved, saved_region,
      stack_offset, frame
                     those of the likely candidate: the one whose frame
                     belongs to the holder's object, or the only one;
                     None each when the address cannot tell (greenlets
                     started at the same depth share addresses)

    Words that CPython and this package keep pointing into C stacks, and
    handle at each switch, are not hits; nor the engine's records and
    heap copies, words on the monitor thread's stack, or words in freed
    malloc chunks. Other threads' stacks are scanned from their stack
    pointer up, when they wait in a system call (every Python thread but
    this one waits for the GIL). An empty list: nothing found. The
    greenlets hit are flagged in the monitor segment (H in gltop) until an
    audit finds them clean."""
    hits = _hazard_scan()
    if not hits:
        return []
    greenlets = {record["id"]: record["greenlet"] for record in _records()}
    flat = []
    for (holder, pointer, greenlet_id, native_id, start, end, kind,
         holder_thread, path, symbol, symbol_offset, frame, saved,
         allocation, allocation_size) in hits:
        flat.append({
            "holder": holder, "place": PLACES.get(kind, "?"),
            "thread": holder_thread or None,
            "object": path or None, "symbol": symbol or None,
            "symbol_offset": symbol_offset if symbol else None,
            "allocation": ({"start": allocation, "size": allocation_size}
                           if allocation else None),
            "pointer": pointer, "greenlet_id": greenlet_id,
            "greenlet": greenlets.get(greenlet_id),
            "thread_native_id": native_id, "saved": bool(saved),
            "saved_region": {"start": start, "end": end},
            "stack_offset": pointer - start, "frame": frame,
            "frame_object": frame["object"] if frame else None})
    candidate_keys = ("greenlet_id", "greenlet", "thread_native_id",
                      "saved", "saved_region", "stack_offset", "frame")
    found = []
    for first, candidates, certain in _group_by_holder(flat):
        entry = {"holder": first["holder"], "place": first["place"],
                 "thread": first["thread"],
                 "object": first["object"], "symbol": first["symbol"],
                 "symbol_offset": first["symbol_offset"],
                 "allocation": first["allocation"],
                 "pointer": first["pointer"],
                 "candidates": [{key: c[key] for key in candidate_keys}
                                for c in candidates]}
        likely = candidates[0] if certain else None
        for key in candidate_keys:
            entry[key] = likely[key] if likely else None
        found.append(entry)
    return found


def _describe_hazard(hit):
    """One line for a hit of audit(), for logs."""
    holder = ("%s+0x%x" % (hit["symbol"], hit["symbol_offset"])
              if hit["symbol"] else "0x%x" % hit["holder"])
    if hit["place"] == "object":
        where = "in %s" % hit["object"]
    elif hit["place"] == "thread stack":
        where = "on the stack of thread %s" % hit["thread"]
    elif hit["allocation"]:
        where = "in the heap allocation 0x%x (%d bytes)" % (
            hit["allocation"]["start"], hit["allocation"]["size"])
    else:
        where = "in anonymous memory"
    whose = ("greenlet #%d%s" % (hit["greenlet_id"],
                                 " in %s()" % hit["frame"]["function"]
                                 if hit["frame"] else "")
             if hit["greenlet_id"] is not None else
             "one of greenlets %s" % ", ".join(
                 "#%d" % c["greenlet_id"] for c in hit["candidates"]))
    state = ("" if hit["saved"] is None else
             "saved " if hit["saved"] else "live (for now) ")
    return ("greenlet hazard: %s %s points at 0x%x, in the %sstack of "
            "%s" % (holder, where, hit["pointer"], state, whose))


def _write_hazard(hit):
    sys.stderr.write(_describe_hazard(hit) + "\n")


def _log_to(path):
    """A report that appends each hit's line to the file at `path` (with
    the process id: several processes may share it)."""
    import os

    def log(hit):
        with open(path, "a") as log_file:
            log_file.write("%d %s\n" % (os.getpid(), _describe_hazard(hit)))
    return log


def _start_from_environment(environ):
    """GREENLET_AUDIT_EVERY=SECONDS starts audit_every(SECONDS) when
    greenlet is imported, for programs one cannot change; its lines go to
    standard error, or are appended to the file GREENLET_AUDIT_LOG names."""
    every = environ.get("GREENLET_AUDIT_EVERY")
    if not every:
        return
    log = environ.get("GREENLET_AUDIT_LOG")
    try:
        audit_every(float(every), _log_to(log) if log else None)
    except ValueError:
        sys.stderr.write("greenlet: GREENLET_AUDIT_EVERY=%r is not a "
                         "positive number of seconds; no periodic audit\n"
                         % every)


_periodic = {"thread": None, "stop": None}


def audit_every(seconds, report=None):
    """Runs audit() every `seconds` in a daemon thread, and calls
    report(hit) once for each hit found in two rounds in a row (a holder
    keeps its pointer; stale leftovers in reused memory come and go), and
    again only after a round without it: by default, a line on standard
    error. Each round
    also refreshes the hazard flags that gltop shows. audit_every(None)
    stops it; a new call replaces the previous one. The environment
    variable GREENLET_AUDIT_EVERY=SECONDS starts it when greenlet is
    imported (GREENLET_AUDIT_LOG=FILE: its lines appended to FILE). An audit holds the GIL while it scans (a few milliseconds
    for a typical process), so every thread pauses that long."""
    previous = _periodic["stop"]
    if previous is not None:
        previous.set()
        if _periodic["thread"] is not threading.current_thread():
            _periodic["thread"].join()
        _periodic["thread"] = _periodic["stop"] = None
    if seconds is None:
        return
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    report = report or _write_hazard
    stop = threading.Event()

    def rounds():
        # A hit is reported once it is found in two rounds in a row: a
        # holder keeps its pointer, while a stale leftover in memory that
        # is being reused comes and goes. It is reported again only after
        # a round without it.
        before, reported = set(), set()
        while not stop.wait(seconds):
            found = audit()
            now = {(hit["holder"], hit["pointer"]) for hit in found}
            for hit in found:
                key = (hit["holder"], hit["pointer"])
                if key in before and key not in reported:
                    report(hit)
                    reported.add(key)
            reported &= now
            before = now

    thread = threading.Thread(target=rounds, name="greenlet-audit",
                              daemon=True)
    _periodic["thread"], _periodic["stop"] = thread, stop
    thread.start()
