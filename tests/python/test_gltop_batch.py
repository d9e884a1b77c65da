"""gltop's batch mode (build/gltop -b) against a live workload
(tests/workloads/known_greenlets.py), checked against what the workload
holds and against `python -m greenlet.inspect PID --json`; its errors, and
a watched process that exits, and the B flag on a greenlet that keeps its
thread busy without switching. The screen: test_gltop_screen.py."""
import json
import os
import subprocess
import time

import pytest

from package_under_test import REPOSITORY
from test_monitor_command import (  # gevent_server: a fixture, used by name
    Workload, gevent_server, read_json,
    unused_pid, WORKLOAD)

GLTOP = os.environ.get("GLTOP", os.path.join(REPOSITORY, "build", "gltop"))


def gltop(*arguments, timeout=60):
    return subprocess.run([GLTOP] + list(arguments), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def plain():
    workload = Workload("plain")
    yield workload
    workload.close()


def test_json_lines_match_the_workload(plain):
    completed = gltop("-b", "-p", str(plain.pid), "-n", "2", "-d", "0.2",
                      "--json")
    assert completed.returncode == 0, completed.stderr
    first, second = [json.loads(line) for line in
                     completed.stdout.splitlines()]
    assert first["pid"] == plain.pid and WORKLOAD in first["command"]
    assert first["switches_per_second"] is None  # one sample: unknown
    assert second["switches_per_second"] == 0     # it holds still
    published = read_json(plain.pid)
    by_id = {g["id"]: g for g in published["greenlets"]}
    rows = second["greenlets"]
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6, 7, 8]  # tree order
    depth = {r["name"]: r["depth"] for r in rows}
    assert depth == {"main greenlet": 0, "first-worker": 1, "nested": 2,
                     "worker 2": 1, "worker 3": 1, "in-qsort": 1,
                     "never-started": 1, "finished": 1}
    for row in rows:
        seen = by_id[row["id"]]
        assert row["parent_id"] == seen["parent_id"]
        assert row["state"] == seen["state"]
        assert row["heap_bytes"] == seen["saved_bytes"]
        assert row["function"] == (seen["where"]["function"]
                                   if seen["where"] else "")
    assert second["heap_bytes"] == plain.self_view()["saved_bytes"]


def test_text_rows_are_indented_under_their_parents(plain):
    completed = gltop("-b", "-p", str(plain.pid), "-n", "1")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("gltop - pid %d (" % plain.pid)
    assert "greenlets 7" in lines[0]   # alive: the finished one is not
    assert lines[1].split()[:3] == ["ID", "STATE", "THR"]
    first, = [l for l in lines if "first-worker" in l]
    nested, = [l for l in lines if "  nested  " in l]
    assert nested.index("nested") == first.index("first-worker") + 2
    assert "nested_body (%s:" % WORKLOAD in nested


def test_errors_and_a_process_that_exits():
    assert gltop("-b", "-p", str(unused_pid())).returncode == 3
    assert gltop("-b").returncode == 2
    assert gltop("-p", "1").returncode == 2      # no terminal: says so
    assert gltop("-b", "-p", "x").returncode == 2
    assert gltop("--help").returncode == 0
    workload = Workload("plain")
    watcher = subprocess.Popen([GLTOP, "-b", "-p", str(workload.pid), "-d",
                                "0.2"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    workload.close()
    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0
    assert "has exited" in err and out.count("gltop - pid") >= 2


def test_a_greenlet_that_never_switches_is_flagged_blocking():
    busy = Workload("busy")
    try:
        completed = gltop("-b", "-p", str(busy.pid), "-n", "4", "-d", "0.4",
                          "-B", "0.6", "--json")
    finally:
        busy.close()
    assert completed.returncode == 0, completed.stderr
    samples = [json.loads(line) for line in completed.stdout.splitlines()]
    flagged = [[r["name"] for r in s["greenlets"] if r["blocking"]]
               for s in samples]
    assert flagged[0] == []               # one sample: not known to last
    assert flagged[-1] == ["spinner"]     # 1.2 s busy without a switch
    assert not any(r["hazard"] for s in samples for r in s["greenlets"])
    assert samples[-1]["seconds_since_last_switch"] >= 1.0


def test_an_idle_gevent_hub_is_not_flagged(gevent_server):
    completed = gltop("-b", "-p", str(gevent_server.pid), "-n", "4", "-d",
                      "0.4", "-B", "0.6", "--json")
    assert completed.returncode == 0, completed.stderr
    last = json.loads(completed.stdout.splitlines()[-1])
    running = [r for r in last["greenlets"] if r["state"] == "running"]
    assert [r["function"] for r in running] == ["Hub.run"]  # waits in epoll
    assert not any(r["blocking"] for r in last["greenlets"])
