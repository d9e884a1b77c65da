"""greenlet: lightweight coroutines, on a switching engine that records what
it moves, so that tools (greenlet.inspect, gltop) can see into a live
program. A drop-in replacement for the greenlet package."""

__version__ = "3.0.0"

from ._greenlet import (  # noqa: F401
    _C_API,
    _watch_C_API,
    CLOCKS_PER_SEC,
    GREENLET_USE_CONTEXT_VARS,
    GREENLET_USE_GC,
    GREENLET_USE_STANDARD_THREADING,
    GREENLET_USE_TRACING,
    GreenletExit,
    enable_optional_cleanup,
    error,
    get_clocks_used_doing_optional_cleanup,
    getcurrent,
    gettrace,
    greenlet,
    settrace,
)

__all__ = ["__version__", "_C_API", "GreenletExit", "error", "getcurrent",
           "greenlet", "gettrace", "settrace"]


def _start_periodic_audit():
    import os
    if os.environ.get("GREENLET_AUDIT_EVERY"):
        from . import _audit  # not greenlet.inspect: see _audit's docstring
        _audit._start_from_environment(os.environ)


_start_periodic_audit()
