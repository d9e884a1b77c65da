"""The Python frames of suspended greenlets, as gr_frame, snapshots and the
hazard audit see them, on every version: on 3.12+ a suspended chain passes
through the eval loops' entry frames on the greenlet's C stack, which may
be on the heap or overwritten by another greenlet (cpython_compat.c)."""
import gc

from greenlet import getcurrent, greenlet, inspect


def names(frame):
    found = []
    while frame is not None:
        found.append(frame.f_code.co_name)
        frame = frame.f_back
    return found


def suspended_across_c_calls():
    """A greenlet suspended in a key function that sorted() (C) calls, under
    two Python callers: three eval loops, two C calls."""
    main = getcurrent()

    def innermost(item):
        marker = "in innermost"  # noqa: F841  (read through f_locals)
        main.switch(item)
        return item

    def key(item):
        return innermost(item)

    def sorter():
        return sorted([2, 1], key=key)

    def outer():
        return sorter()

    g = greenlet(outer)
    return g, g.switch()


def test_gr_frame_walks_the_whole_stack_across_c_calls():
    g, first = suspended_across_c_calls()
    assert first == 2
    # Other greenlets run at those addresses meanwhile.
    for _ in range(3):
        greenlet(lambda: [x * 2 for x in range(100)]).switch()
    frame = g.gr_frame
    assert names(frame) == ["innermost", "key", "sorter", "outer"]
    assert frame.f_locals["marker"] == "in innermost"
    assert frame.f_lineno == frame.f_code.co_firstlineno + 2
    assert g.switch() == 1          # resumed: the links are put back
    assert names(g.gr_frame) == ["innermost", "key", "sorter", "outer"]
    assert g.switch() == [1, 2]     # and it returns through all of them
    assert g.dead and g.gr_frame is None


def test_a_frame_taken_before_the_resume_stays_usable():
    g, _ = suspended_across_c_calls()
    frame = g.gr_frame
    callers = [frame.f_back, frame.f_back.f_back]
    g.switch()
    g.switch()
    assert g.dead
    # The frames have ended; their objects keep what they had.
    assert frame.f_code.co_name == "innermost"
    assert [c.f_code.co_name for c in callers] == ["key", "sorter"]
    gc.collect()


def test_generators_driven_from_c():
    main = getcurrent()

    def numbers():
        for i in range(3):
            main.switch(i)
            yield i

    def consume():
        return list(numbers())   # list() drives the generator from C

    g = greenlet(consume)
    assert g.switch() == 0
    assert names(g.gr_frame) == ["numbers", "consume"]
    assert g.switch() == 1
    assert names(g.gr_frame) == ["numbers", "consume"]
    g.switch()
    assert g.switch() == [0, 1, 2]


def test_the_main_greenlet_seen_from_a_child():
    main = getcurrent()
    seen = []

    def child():
        seen.append(names(main.gr_frame))

    def caller():
        greenlet(child).switch()

    caller()
    assert seen[0][:2] == ["caller",
                           "test_the_main_greenlet_seen_from_a_child"]


def test_snapshots_show_the_python_stack():
    g, _ = suspended_across_c_calls()
    record, = [r for r in inspect.snapshot() if r["name"] == repr(g)]
    functions = [f["function"] for f in record["python_frames"]]
    assert functions == ["innermost", "key", "sorter", "outer"]
    g.throw()


def test_the_audit_finds_no_hazard_in_suspended_chains():
    # The links of heap frames to entry frames on a C stack (3.12+) point
    # into saved stacks by design; the audit knows them.
    kept = [suspended_across_c_calls()[0] for _ in range(20)]
    deep = greenlet(lambda: suspended_across_c_calls()[0].switch())
    deep.switch()
    for g in kept:
        g.gr_frame  # changed links too
    assert inspect.audit() == []
    for g in kept:
        g.throw()
