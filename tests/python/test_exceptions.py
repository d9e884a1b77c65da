"""Exceptions across greenlets: propagation to the parent, throw() into
unstarted, suspended and dead greenlets, GreenletExit, and bad input."""
import sys

import pytest

from greenlet import GreenletExit, error, getcurrent, greenlet


def test_exception_propagates_to_parent():
    def fail():
        raise ValueError("from the child")

    with pytest.raises(ValueError, match="from the child"):
        greenlet(fail).switch()


def test_throw_into_suspended_greenlet_can_be_caught():
    main = getcurrent()

    def catcher():
        try:
            main.switch()
        except KeyError as caught:
            return "caught %r" % (caught,)

    g = greenlet(catcher)
    g.switch()
    assert g.throw(KeyError("k")) == "caught KeyError('k')"
    assert g.dead


def test_throw_default_is_greenlet_exit_which_returns_it():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    result = g.throw()
    assert isinstance(result, GreenletExit)
    assert g.dead


def test_throw_into_unstarted_greenlet_kills_it_without_running():
    ran = []
    g = greenlet(lambda: ran.append(1))
    with pytest.raises(IndexError):
        g.throw(IndexError)
    assert ran == [] and g.dead


def test_throw_into_dead_greenlet_raises_in_parent():
    g = greenlet(lambda: None)
    g.switch()
    with pytest.raises(IndexError):
        g.throw(IndexError("dead"))


def test_throw_with_a_traceback():
    try:
        raise RuntimeError("with traceback")
    except RuntimeError:
        _, value, traceback = sys.exc_info()
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    with pytest.raises(RuntimeError) as raised:
        g.throw(RuntimeError, value, traceback)
    assert raised.value is value


@pytest.mark.parametrize("arguments", [
    (1,), ("not an exception",), (ValueError("x"), "separate value"),
    (ValueError, None, "not a traceback"),
])
def test_throw_refuses_bad_arguments(arguments):
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    with pytest.raises(TypeError):
        g.throw(*arguments)
    assert not g.dead  # nothing happened to it
    g.switch()


def test_exc_info_is_per_greenlet():
    main = getcurrent()
    seen = []

    def child():
        seen.append(sys.exc_info()[0])
        try:
            raise KeyError
        except KeyError:
            main.switch()
            seen.append(sys.exc_info()[0])

    try:
        raise ValueError
    except ValueError:
        g = greenlet(child)
        g.switch()
        assert sys.exc_info()[0] is ValueError
        g.switch()
    assert seen == [None, KeyError]


def test_error_and_exit_types():
    assert issubclass(GreenletExit, BaseException)
    assert not issubclass(GreenletExit, Exception)
    assert issubclass(error, Exception)
