"""`python -m greenlet.inspect` and `... PID` against real workloads in
subprocesses (tests/workloads/known_greenlets.py: plain greenlets, and a
gevent server with clients), checked against what each workload is known
to hold and against the engine's own in-process view of it; and the
command's errors, each with its exit status."""
import json
import os
import subprocess
import sys

import pytest

from package_under_test import PACKAGE_ROOT, REPOSITORY, require_gevent

WORKLOAD = os.path.join(REPOSITORY, "tests", "workloads", "known_greenlets.py")
ENVIRONMENT = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
NOBODY = 65534  # user and group ids


class Workload:
    """A workload process that holds still once ready."""

    def __init__(self, *arguments, environment=None):
        self.process = subprocess.Popen(
            [sys.executable, WORKLOAD] + list(arguments),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=environment or ENVIRONMENT)
        line = self.process.stdout.readline()
        assert line.startswith("ready "), line
        self.pid = self.process.pid

    def self_view(self):
        """What the engine says in-process, by greenlet id."""
        self.process.stdin.write("view\n")
        self.process.stdin.flush()
        view = json.loads(self.process.stdout.readline())
        view["by_id"] = {g["id"]: g for g in view["greenlets"]}
        return view

    def close(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def plain():
    workload = Workload("plain")
    yield workload
    workload.close()


@pytest.fixture(scope="module")
def gevent_server():
    require_gevent()
    workload = Workload("gevent", "12")
    yield workload
    workload.close()


def inspect_command(*arguments, user=None):
    prefix = []
    if user:
        prefix = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
                  "--clear-groups"]
    return subprocess.run(
        prefix + [sys.executable, "-m", "greenlet.inspect"] + list(arguments),
        capture_output=True, text=True, timeout=120, env=ENVIRONMENT)


def read_json(pid, *extra):
    completed = inspect_command(str(pid), "--json", *extra)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def check_against_self_view(published, view):
    """The segment holds what the engine holds: the same greenlets, parents,
    states, heap-held bytes, names and innermost functions."""
    by_id = {g["id"]: g for g in published["greenlets"]}
    assert set(by_id) == set(view["by_id"])
    for greenlet_id, own in view["by_id"].items():
        seen = by_id[greenlet_id]
        assert seen["parent_id"] == own["parent_id"]
        assert seen["state"] == own["state"]
        assert seen["saved_bytes"] == own["saved_bytes"]
        function = seen["where"]["function"] if seen["where"] else None
        if own["state"] in ("suspended", "running"):
            # qualified there ("Event.wait"), a code name here ("wait")
            assert (function == own["function"] if own["function"] is None
                    else function.endswith(own["function"])), (seen, own)
    assert published["saved_bytes"] == view["saved_bytes"]


def test_plain_workload_tree_states_places_and_heap_bytes(plain):
    before = plain.self_view()
    published = read_json(plain.pid)
    after = plain.self_view()
    assert before == after  # the workload held still
    assert published["pid"] == plain.pid and published["fresh"]
    assert published["runtime"].startswith("CPython 3.")
    check_against_self_view(published, before)

    by_name = {g["name"]: g for g in published["greenlets"]}
    main = by_name["main greenlet"]
    assert main["state"] == "running" and main["main"]
    # threading's; code objects have qualified names from 3.11 on
    assert main["where"]["function"] == (
        "Condition.wait" if sys.version_info >= (3, 11) else "wait")
    expected = {  # name: (state, parent, innermost function)
        # first-worker switched into its child, which switched to main
        "first-worker": ("suspended", "main greenlet", "worker_with_child"),
        "nested": ("suspended", "first-worker", "nested_body"),
        "worker 2": ("suspended", "main greenlet", "parked_in_deeper"),
        "worker 3": ("suspended", "main greenlet", "parked_in_deeper"),
        "in-qsort": ("suspended", "main greenlet", "compare"),
        "never-started": ("new", "main greenlet", "never_started"),
        "finished": ("dead", "main greenlet", None)}
    ids = {name: g["id"] for name, g in by_name.items()}
    for name, (state, parent, function) in expected.items():
        g = by_name[name]
        assert g["state"] == state, name
        assert g["parent_id"] == ids[parent], name
        assert (g["where"]["function"] if g["where"] else None) == function
        if state == "suspended":
            assert g["saved_bytes"] > 0 and g["where"]["file"] == WORKLOAD
    assert len(published["greenlets"]) == len(expected) + 1
    thread, = published["threads"]
    assert thread["name"] == "MainThread" and thread["native_id"] == plain.pid


def test_text_tree_shows_each_greenlet_under_its_parent(plain):
    completed = inspect_command(str(plain.pid))
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("pid %d  CPython 3." % plain.pid)
    assert "7 greenlets alive" in lines[0]
    assert lines[1].startswith("thread 1 (MainThread, native id %d)"
                               % plain.pid)
    main_line, = [l for l in lines if "main greenlet" in l]
    nested_line, = [l for l in lines if "nested" in l]
    first_line, = [l for l in lines if "first-worker" in l]
    indent = lambda line: len(line) - len(line.lstrip())
    assert indent(main_line) == 2 and indent(first_line) == 4
    assert indent(nested_line) == 6
    assert lines.index(nested_line) == lines.index(first_line) + 1
    assert "suspended  nested  heap " in nested_line
    assert "at nested_body (%s:" % WORKLOAD in nested_line


def test_stacks_python_and_native_including_a_c_callback(plain):
    published = read_json(plain.pid, "--stacks")
    by_name = {g["name"]: g for g in published["greenlets"]}
    nested = by_name["nested"]["stacks"]
    assert [f["function"] for f in nested["python"]] == ["nested_body"]
    worker = by_name["worker 2"]["stacks"]
    assert [f["function"] for f in worker["python"]] == [
        "parked_in_deeper", "worker"]
    first = by_name["first-worker"]["stacks"]
    assert [f["function"] for f in first["python"]] == ["worker_with_child"]
    natives = [f["function"] for f in first["native"]]
    assert natives[0] == "gl__stack_switch"
    assert natives[-1] == "gl__greenlet_trampoline"
    in_qsort = by_name["in-qsort"]["stacks"]
    assert [f["function"] for f in in_qsort["python"]] == [
        "compare", "sort_with_callback"]
    assert any("qsort" in f["function"] for f in in_qsort["native"]), \
        in_qsort["native"]
    assert by_name["never-started"]["stacks"]["notes"] == ["not started: no "
                                                          "suspended native "
                                                          "stack"]
    assert "stacks" not in by_name["finished"] or \
        by_name["finished"]["stacks"] is None

    main = by_name["main greenlet"]["stacks"]
    assert [f["function"] for f in main["python"]][-2:] == [
        "main_program", "<module>"]
    assert main["notes"] == ["running: no suspended native stack"]

    text = inspect_command(str(plain.pid), "--stacks").stdout
    stacks = text[text.index("stacks:"):]
    assert stacks.index("  #1 main greenlet") < stacks.index("  #2 first")
    assert "[native] gl__greenlet_trampoline" in stacks
    assert "    compare (%s:" % WORKLOAD in stacks


def test_gevent_server_handlers_and_clients(gevent_server):
    before = gevent_server.self_view()
    published = read_json(gevent_server.pid, "--stacks")
    after = gevent_server.self_view()
    assert before == after
    check_against_self_view(published, before)
    greenlets = published["greenlets"]
    assert len(published["threads"]) == 1
    alive = [g for g in greenlets if g["state"] != "dead"]
    # main, the hub, 12 clients, 12 connection handlers; the server's
    # accept loop is a watcher callback of the hub, not a greenlet.
    assert len(alive) == 26, [(g["name"], g["state"]) for g in alive]
    hub, = [g for g in alive if g["name"] == "Hub"]
    main, = [g for g in alive if g["main"]]
    assert hub["state"] == "running" and main["state"] == "suspended"
    assert hub["parent_id"] == main["id"]
    handlers = [g for g in alive
                if "echo"
                in [f["function"] for f in g["stacks"]["python"]]]
    clients = [g for g in alive
               if "build_gevent.<locals>.client"
               in [f["function"] for f in g["stacks"]["python"]]]
    assert len(handlers) == 12 and len(clients) == 12
    for g in handlers + clients:
        assert g["state"] == "suspended" and g["parent_id"] == hub["id"]
        assert g["saved_bytes"] > 0
        assert g["stacks"]["native"][-1]["function"] == \
            "gl__greenlet_trampoline"
    # Suspended in gevent's socket recv, called by the handler.
    assert {g["where"]["function"] for g in handlers} == {"SocketMixin.recv"}
    assert {g["where"]["function"] for g in clients} == {
        "build_gevent.<locals>.client"}
    assert main["where"]["function"] == "Hub.join"


def test_listing_shows_the_workloads(plain, gevent_server):
    completed = inspect_command()
    assert completed.returncode == 0, completed.stderr
    rows = {int(line.split()[0]): line.split()
            for line in completed.stdout.splitlines()[1:]}
    assert rows[plain.pid][1:3] == ["1", "7"]
    assert rows[gevent_server.pid][1:3] == ["1", "26"]
    assert rows[plain.pid][3] == str(plain.self_view()["saved_bytes"])
    assert WORKLOAD in " ".join(rows[plain.pid])
    listing = json.loads(inspect_command("--json").stdout)
    pids = {entry["pid"] for entry in listing}
    assert {plain.pid, gevent_server.pid} <= pids


def unused_pid():
    pid = 4000000
    while os.path.exists("/proc/%d" % pid):
        pid -= 1
    return pid


def test_unknown_pid():
    completed = inspect_command(str(unused_pid()))
    assert completed.returncode == 3
    assert "no such process" in completed.stderr


def test_process_without_greenlets():
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        completed = inspect_command(str(sleeper.pid))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert completed.returncode == 4
    assert "publishes no greenlet monitor segment" in completed.stderr


def test_monitor_turned_off_by_the_environment():
    workload = Workload("plain",
                        environment=dict(ENVIRONMENT, GREENLET_MONITOR="0"))
    try:
        completed = inspect_command(str(workload.pid))
    finally:
        workload.close()
    assert completed.returncode == 4


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_permission_denied_for_another_user(plain):
    if inspect_command("--help", user=NOBODY).returncode == 127:
        pytest.skip("%s cannot be run by another user (pyenv's interpreters "
                    "live under /root)" % sys.executable)
    completed = inspect_command(str(plain.pid), user=NOBODY)
    assert completed.returncode == 5, completed.stderr
    assert "permission denied" in completed.stderr
    listing = inspect_command(user=NOBODY)
    assert listing.returncode == 0
    assert str(plain.pid) not in listing.stdout.split()


FAKE_SEGMENT = r"""
import os, struct, sys, time
fd = os.memfd_create("greenlet-monitor")
header = bytearray(4096)
header[0:8] = b"GLMONITR"
struct.pack_into("<II", header, 8, int(sys.argv[1]), 360)
if sys.argv[2] == "garbage":
    struct.pack_into("<Q", header, 120, 1 << 60)   # segment_size
os.write(fd, bytes(header))
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("version, contents, status, message", [
    (2, "header", 6, "another layout version"),
    (1, "garbage", 7, "corrupt")])
def test_segments_of_another_version_or_corrupt(version, contents, status,
                                                message):
    fake = subprocess.Popen(
        [sys.executable, "-c", FAKE_SEGMENT, str(version), contents],
        stdout=subprocess.PIPE, text=True)
    try:
        assert fake.stdout.readline() == "ready\n"
        completed = inspect_command(str(fake.pid), "--timeout", "0.5")
    finally:
        fake.kill()
        fake.wait()
    assert completed.returncode == status, completed.stderr
    assert message in completed.stderr


def test_help_and_bad_arguments():
    completed = inspect_command("--help")
    assert completed.returncode == 0
    for text in ("examples:", "exit status:", "--stacks", "--json", "run"):
        assert text in completed.stdout
    assert inspect_command("notapid").returncode == 2
    assert inspect_command("--stacks").returncode == 2
    assert inspect_command("0").returncode == 2


def test_spawn_sites_are_published_when_recorded():
    workload = Workload("plain",
                        environment=dict(ENVIRONMENT, GREENLET_SPAWN_SITES="1"))
    try:
        published = read_json(workload.pid)
    finally:
        workload.close()
    by_name = {g["name"]: g for g in published["greenlets"]}
    site = by_name["first-worker"]["spawn_site"]
    assert site["function"] == "build_plain" and site["file"] == WORKLOAD
    assert by_name["nested"]["spawn_site"]["function"] == "worker_with_child"
    assert by_name["main greenlet"]["spawn_site"] is None


SURROGATE_NAME = r"""
import sys, threading
from greenlet import getcurrent, greenlet, inspect
main = getcurrent()
g = greenlet(lambda: main.switch())
g.switch()
inspect.set_name(g, "bad \udc80 name \u00e9")   # os.fsdecode makes such names
print("ready", flush=True)
sys.stdin.readline()
"""


def test_names_that_are_not_valid_unicode_are_published_replaced():
    process = subprocess.Popen([sys.executable, "-c", SURROGATE_NAME],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env=ENVIRONMENT)
    try:
        assert process.stdout.readline() == "ready\n"
        published = read_json(process.pid)
    finally:
        process.kill()
        process.wait()
    names = {g["name"] for g in published["greenlets"]}
    assert "bad \ufffd name \u00e9" in names
