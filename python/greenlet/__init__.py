"""greenlet: lightweight coroutines, on a switching engine that records what
it moves, so that tools (greenlet.inspect, gltop) can see into a live
program. A drop-in replacement for the greenlet package."""

__version__ = "3.0.0"

from ._greenlet import (  # noqa: F401
    _C_API,
    GREENLET_USE_CONTEXT_VARS,
    GREENLET_USE_GC,
    GREENLET_USE_STANDARD_THREADING,
    GREENLET_USE_TRACING,
    GreenletExit,
    error,
    getcurrent,
    gettrace,
    greenlet,
    settrace,
)


def _start_periodic_audit():
    """GREENLET_AUDIT_EVERY=SECONDS: greenlet.inspect.audit_every(SECONDS)
    from the start, for programs one cannot change."""
    import os
    every = os.environ.get("GREENLET_AUDIT_EVERY")
    if not every:
        return
    from . import inspect
    try:
        inspect.audit_every(float(every))
    except ValueError:
        import sys
        sys.stderr.write("greenlet: GREENLET_AUDIT_EVERY=%r is not a "
                         "positive number of seconds; no periodic audit\n"
                         % every)


_start_periodic_audit()
