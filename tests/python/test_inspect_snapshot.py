"""greenlet.inspect in process: snapshot(), format_tree() and to_json()
against a workload whose greenlets are known: how many, their parents,
states, where each is suspended, and heap bytes equal to the engine's."""
import json
import threading

from greenlet import getcurrent, greenlet, inspect


def waiting_in_alpha(back_to):
    back_to.switch()


def waiting_in_beta(main, prefix):
    child = greenlet(waiting_in_alpha)
    inspect.set_name(child, prefix + "grandchild")
    child.switch(getcurrent())  # it suspends, switching back here
    main.switch(child)


def build_workload(prefix):
    main = getcurrent()
    first = greenlet(waiting_in_alpha)
    second = greenlet(waiting_in_beta)
    inspect.set_name(first, prefix + "first")
    first.switch(main)
    grandchild = second.switch(main, prefix)
    never_started = greenlet(lambda: None)
    return main, first, second, grandchild, never_started


def test_snapshot_matches_the_workload():
    main, first, second, grandchild, never_started = build_workload("a-")
    records = {r["id"]: r for r in inspect.snapshot()}
    by_name = {r["name"][2:]: r for r in records.values()
               if r["name"].startswith("a-")}

    assert by_name["first"]["state"] == "suspended"
    assert by_name["first"]["python_frames"][0]["function"] == "waiting_in_alpha"
    assert by_name["grandchild"]["python_frames"][0]["function"] == "waiting_in_alpha"
    second_record = next(r for r in records.values()
                         if r["python_frames"]
                         and r["python_frames"][0]["function"] == "waiting_in_beta")
    assert records[by_name["grandchild"]["parent_id"]] is second_record

    main_record = next(r for r in records.values()
                       if r["main"] and r["state"] == "running"
                       and r["thread_name"] == threading.current_thread().name)
    assert main_record["python_frames"][0]["function"] == \
        "test_snapshot_matches_the_workload"
    assert by_name["first"]["parent_id"] == main_record["id"]
    assert second_record["parent_id"] == main_record["id"]
    assert any(r["state"] == "new" and r["parent_id"] == main_record["id"]
               for r in records.values())

    # heap bytes as the engine reports them, and a consistent stack split
    for record, g in ((by_name["first"], first), (second_record, second),
                      (by_name["grandchild"], grandchild)):
        assert record["saved_bytes"] == g._stack_saved
        assert record["heap_bytes"] >= record["saved_bytes"]
        regions = record["saved_regions"]
        assert sum(region["bytes"] for region in regions) == g._stack_saved
        assert record["live_stack_bytes"] + record["saved_bytes"] == \
            record["stack_stop"] - record["stack_pointer"]

    for g in (first, second, grandchild):
        g.throw()


def test_other_threads_are_in_the_snapshot():
    ready, done = threading.Event(), threading.Event()

    def worker():
        here = getcurrent()
        parked = [greenlet(waiting_in_alpha) for _ in range(3)]
        for g in parked:
            g.switch(here)
        ready.set()
        done.wait(10)

    thread = threading.Thread(target=worker, name="inspected-worker")
    thread.start()
    ready.wait(10)
    try:
        records = inspect.snapshot()
        theirs = [r for r in records if r["thread_name"] == "inspected-worker"]
        assert sorted(r["state"] for r in theirs) == \
            ["running"] + ["suspended"] * 3
        assert all(r["python_frames"][0]["function"] == "waiting_in_alpha"
                   for r in theirs if r["state"] == "suspended")
        running = next(r for r in theirs if r["state"] == "running")
        assert running["python_frames"][0]["function"] == "wait"
        tree = inspect.format_tree(records)
        assert "inspected-worker" in tree
    finally:
        done.set()
        thread.join()


def test_tree_and_json_render_the_same_snapshot():
    main, first, second, grandchild, never_started = build_workload("b-")
    records = inspect.snapshot()
    tree = inspect.format_tree(records)
    lines = tree.splitlines()
    first_line = next(line for line in lines if " b-first " in line)
    grandchild_line = next(line for line in lines if "b-grandchild" in line)
    indent = lambda line: len(line) - len(line.lstrip())  # noqa: E731
    assert indent(grandchild_line) == indent(first_line) + 2  # under second
    assert "waiting_in_alpha" in first_line
    decoded = json.loads(inspect.to_json(records))
    assert [r["id"] for r in decoded] == [r["id"] for r in records]
    for g in (first, second, grandchild):
        g.throw()


def spawned_here():
    return greenlet(waiting_in_alpha)


def test_spawn_sites_when_recorded():
    before = inspect.record_spawn_sites(True)
    try:
        recorded = spawned_here()
    finally:
        inspect.record_spawn_sites(before)
    unrecorded = spawned_here()
    recorded.switch(getcurrent())
    unrecorded.switch(getcurrent())
    records = {r["id"]: r for r in inspect.snapshot()}
    sites = [r["spawn_site"] for r in records.values()
             if r["spawn_site"] and r["spawn_site"]["function"] ==
             "spawned_here"]
    assert len(sites) == 1
    assert sites[0]["file"] == __file__
    assert sites[0]["line"] == spawned_here.__code__.co_firstlineno + 1
    for g in (recorded, unrecorded):
        g.throw()
