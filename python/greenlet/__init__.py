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
