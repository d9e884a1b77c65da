"""contextvars per greenlet, gr_context, and greenlet.settrace."""
import contextvars

import greenlet as greenlet_module
from greenlet import getcurrent, greenlet

variable = contextvars.ContextVar("variable", default="unset")


def test_context_variables_are_per_greenlet():
    main = getcurrent()
    variable.set("main")

    def body():
        assert variable.get() == "unset"
        variable.set("child")
        main.switch()
        return variable.get()

    g = greenlet(body)
    g.switch()
    assert variable.get() == "main"
    assert g.switch() == "child"
    assert variable.get() == "main"


def test_gr_context_can_be_given():
    context = contextvars.copy_context()
    context.run(variable.set, "given")
    g = greenlet(lambda: variable.get())
    g.gr_context = context
    assert g.switch() == "given"


def test_settrace_sees_switches_and_throws():
    events = []
    main = getcurrent()

    def tracer(event, origin_target):
        events.append((event,) + tuple(origin_target))

    g = greenlet(lambda: main.switch())
    previous = greenlet_module.settrace(tracer)
    try:
        assert greenlet_module.gettrace() is tracer
        g.switch()
        g.throw(KeyError)
    except KeyError:
        pass
    finally:
        greenlet_module.settrace(previous)
    assert events[:2] == [("switch", main, g), ("switch", g, main)]
    assert events[2] == ("throw", main, g)


def test_starting_a_greenlet_keeps_sys_settrace_on():
    import sys
    calls = []

    def tracer(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    def run_in_greenlet():
        pass

    def after_the_greenlet():
        pass

    sys.settrace(tracer)
    try:
        greenlet(run_in_greenlet).switch()
        after_the_greenlet()
    finally:
        sys.settrace(None)
    assert "run_in_greenlet" in calls and "after_the_greenlet" in calls
