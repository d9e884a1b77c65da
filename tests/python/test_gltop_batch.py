"""gltop's batch mode (build/gltop -b) against a live workload
(tests/workloads/known_greenlets.py), checked against what the workload
holds and against `python -m greenlet.inspect PID --json`; its errors, and
a watched process that exits, and the B flag on a greenlet that keeps its
thread busy without switching. The screen: test_gltop_screen.py."""
import json
import os
import re
import subprocess
import sys
import time

import pytest

from package_under_test import REPOSITORY
from test_monitor_command import (  # gevent_server: a fixture, used by name
    ENVIRONMENT, Workload, gevent_server, read_json, unused_pid, WORKLOAD)

GLTOP = os.environ.get("GLTOP", os.path.join(REPOSITORY, "build", "gltop"))
ODD = os.path.join(REPOSITORY, "tests", "workloads", "odd_processes.py")


def gltop(*arguments, timeout=60):
    return subprocess.run([GLTOP] + list(arguments), capture_output=True,
                          text=True, timeout=timeout)


def blocking_watch(pid, threshold):
    """Four JSON samples of `pid`, 0.4 s apart, B after `threshold` s."""
    completed = gltop("-b", "-p", str(pid), "-n", "4", "-d", "0.4", "-B",
                      str(threshold), "--json")
    assert completed.returncode == 0, completed.stderr
    return [json.loads(line) for line in completed.stdout.splitlines()]


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
    assert gltop("-b", "-n", "0").returncode == 2
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
        samples = blocking_watch(busy.pid, 0.6)
    finally:
        busy.close()
    flagged = [[r["name"] for r in s["greenlets"] if r["blocking"]]
               for s in samples]
    assert flagged[0] == []               # one sample: not known to last
    assert flagged[-1] == ["spinner"]     # 1.2 s busy without a switch
    assert not any(r["hazard"] for s in samples for r in s["greenlets"])
    assert samples[-1]["seconds_since_last_switch"] >= 1.0


def test_an_idle_gevent_hub_is_not_flagged(gevent_server):
    last = blocking_watch(gevent_server.pid, 0.6)[-1]
    running = [r for r in last["greenlets"] if r["state"] == "running"]
    assert [r["function"] for r in running] == ["Hub.run"]  # waits in epoll
    assert not any(r["blocking"] for r in last["greenlets"])


class Odd:
    """A process of tests/workloads/odd_processes.py."""

    def __init__(self, kind, *arguments):
        self.process = subprocess.Popen(
            [sys.executable, ODD, kind] + list(arguments),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=ENVIRONMENT)
        line = self.process.stdout.readline()
        assert line.startswith("ready "), line
        self.pid = self.process.pid

    def close(self):
        self.process.kill()
        self.process.wait()


def test_a_process_that_runs_exec_is_no_longer_watched():
    odd = Odd("exec")
    try:
        watcher = subprocess.Popen(
            [GLTOP, "-b", "-p", str(odd.pid), "-d", "0.2", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = watcher.stdout.readline()
        assert json.loads(first)["greenlets_alive"] == 2
        odd.process.stdin.write("exec now\n")
        odd.process.stdin.flush()
        _, errors = watcher.communicate(timeout=30)
    finally:
        odd.close()
    assert watcher.returncode == 0, errors
    assert "pid %d no longer publishes a segment" % odd.pid in errors


def test_a_process_that_never_published_is_not_shown_as_empty():
    odd = Odd("gil")
    try:
        completed = gltop("-b", "-p", str(odd.pid), "-n", "1")
    finally:
        odd.close()
    assert completed.returncode == 7, completed.stdout  # not zeros
    assert "did not answer in time" in completed.stderr
    assert completed.stdout == ""


def test_a_busy_thread_with_nothing_to_block_is_not_flagged():
    odd = Odd("alone")
    try:
        last = blocking_watch(odd.pid, 0.5)[-1]
    finally:
        odd.close()
    states = {r["name"]: r["state"] for r in last["greenlets"]}
    assert states == {"main greenlet": "running", "first": "dead"}
    assert not any(r["blocking"] for r in last["greenlets"])


def test_greenlets_new_since_the_last_look_have_run():
    odd = Odd("spawner")
    try:
        completed = gltop("-b", "-p", str(odd.pid), "-n", "3", "-d", "0.7",
                          "--json")
    finally:
        odd.close()
    assert completed.returncode == 0, completed.stderr
    _, before, last = [json.loads(line)
                       for line in completed.stdout.splitlines()]
    seen_before = {r["id"] for r in before["greenlets"]}
    new = [r for r in last["greenlets"]
           if r["id"] not in seen_before and r["state"] == "suspended"]
    assert len(new) >= 2
    assert all(r["idle_seconds"] == 0 for r in new), new  # ran meanwhile
    assert last["no_switch_seen"] is False


def test_without_a_pid_it_lists_the_processes(plain):
    completed = gltop("-b", "--json")
    assert completed.returncode == 0, completed.stderr
    listed = {p["pid"]: p for p in json.loads(completed.stdout)["processes"]}
    assert listed[plain.pid]["greenlets_alive"] == 7
    assert WORKLOAD in listed[plain.pid]["command"]
    text = gltop("-b")
    assert re.search(r"^ *%d +1 +7 +\d+  CPython" % plain.pid, text.stdout,
                     re.M), text.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a namespace")
def test_a_process_in_its_own_pid_namespace():
    process = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
         WORKLOAD, "busy"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=ENVIRONMENT)
    try:
        assert process.stdout.readline() == "ready 1\n"  # its own view
        # unshare's one child (read from /proc: a tool such as pgrep could
        # hang under the sanitizer runtimes that test-asan preloads)
        with open("/proc/%d/task/%d/children" % (process.pid,
                                                 process.pid)) as children:
            inner, = [int(pid) for pid in children.read().split()]
        last = blocking_watch(inner, 0.6)[-1]
    finally:
        process.kill()
        process.wait()
    assert last["pid"] == inner  # as gltop sees it, not 1
    spinner, = [r for r in last["greenlets"] if r["name"] == "spinner"]
    assert spinner["blocking"]  # its thread's CPU time found by NSpid
