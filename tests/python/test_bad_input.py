"""Bad input raises the right exception and leaves everything usable."""
import pytest

import greenlet as greenlet_module
from greenlet import getcurrent, greenlet


def still_usable():
    main = getcurrent()
    g = greenlet(lambda x: main.switch(x) + 1)
    assert g.switch(1) == 1
    assert g.switch(2) == 3
    return True


def test_uncallable_run_fails_in_the_new_greenlet_and_propagates():
    g = greenlet(42)
    with pytest.raises(TypeError):
        g.switch()
    assert g.dead and still_usable()


@pytest.mark.parametrize("parent", [1, "main", object()])
def test_parent_must_be_a_greenlet(parent):
    with pytest.raises(TypeError):
        greenlet(lambda: None, parent)
    g = greenlet(lambda: None)
    with pytest.raises(TypeError):
        g.parent = parent
    assert g.parent is getcurrent() and still_usable()


def test_constructor_arguments():
    with pytest.raises(TypeError):
        greenlet(lambda: None, None, "extra")
    with pytest.raises(TypeError):
        greenlet(unknown_keyword=1)
    assert still_usable()


def test_switch_is_a_method_of_greenlets_only():
    with pytest.raises(TypeError):
        greenlet.switch(object())
    assert still_usable()


def test_settrace_with_a_failing_tracer_raises_in_the_switcher():
    def tracer(event, args):
        raise ZeroDivisionError("from the tracer")

    main = getcurrent()
    g = greenlet(lambda: main.switch("back"))
    previous = greenlet_module.settrace(tracer)
    try:
        with pytest.raises(ZeroDivisionError):
            g.switch()
    finally:
        greenlet_module.settrace(previous)
    assert still_usable()


def test_main_greenlet_parent_cannot_be_set():
    main = getcurrent()
    other = greenlet(lambda: None)
    with pytest.raises(AttributeError):
        main.parent = other
    assert main.parent is None and still_usable()
