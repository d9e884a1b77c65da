"""Switching between greenlets: what each side receives, return to the
parent, dead greenlets, and the argument and keyword rules of switch()."""
import pytest

from greenlet import getcurrent, greenlet


def test_switch_passes_values_both_ways():
    main = getcurrent()
    seen = []

    def run(a, b=0):
        seen.append((a, b))
        x = main.switch(a + b)
        seen.append(x)
        return "done"

    g = greenlet(run)
    assert g.switch(1, b=5) == 6
    assert g.switch("hi") == "done"
    assert seen == [(1, 5), "hi"]
    assert g.dead


@pytest.mark.parametrize("args, kwargs, expected", [
    ((), {}, ()),
    ((1,), {}, 1),
    ((1, 2), {}, (1, 2)),
    ((), {"k": 3}, {"k": 3}),
    ((1,), {"k": 3}, ((1,), {"k": 3})),
])
def test_what_a_resumed_greenlet_receives(args, kwargs, expected):
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    # g is suspended in main.switch(); send it args and get them back
    received = []
    g2 = greenlet(lambda: received.append(main.switch()))
    g2.switch()
    g2.switch(*args, **kwargs)
    assert received == [expected]


def test_return_value_goes_to_parent():
    assert greenlet(lambda: 42).switch() == 42


def test_nested_parents_return_in_order():
    def level(n):
        if n == 0:
            return 0
        child = greenlet(level)
        assert child.parent is getcurrent()
        return child.switch(n - 1) + n

    assert greenlet(level).switch(30) == sum(range(31))


def test_switch_to_dead_greenlet_goes_to_its_parent():
    main = getcurrent()
    g = greenlet(lambda: None)
    g.switch()
    assert g.dead
    # switching to the dead greenlet lands in its parent: ourselves
    assert g.switch(7) == 7
    assert getcurrent() is main


def test_bool_and_dead():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    assert not g and not g.dead
    g.switch()
    assert g and not g.dead
    g.switch()
    assert not g and g.dead
    assert main and not main.dead


def test_getcurrent_is_the_running_greenlet():
    main = getcurrent()
    inside = []
    g = greenlet(lambda: inside.append(getcurrent()))
    g.switch()
    assert inside == [g]
    assert getcurrent() is main


def test_deep_recursion_in_many_greenlets():
    main = getcurrent()

    def deep(n):
        if n == 0:
            return main.switch(0)
        return deep(n - 1) + 1

    greenlets = [greenlet(deep) for _ in range(50)]
    for i, g in enumerate(greenlets):
        g.switch(i * 10)
    for i, g in enumerate(greenlets):
        assert g.switch(0) == i * 10
