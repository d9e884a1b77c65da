"""greenlet.inspect.audit(), the hazard audit, against an extension that
makes the hazard on purpose (tests/hazards/stack_hazards.c, built here):
a global that keeps a pointer to a stack buffer across a switch, a
stack-allocated callback record registered in a global table, and a
worker thread that holds a stack buffer's address on its own stack. Each is
found, attributed to the extension and its symbol, to the suspended
greenlet and to the C frame whose buffer it is; and nothing is found in a
program without such an extension, a gevent server with clients
included."""
import ctypes
import json
import os
import signal
import subprocess
import sys
import sysconfig
import threading
import time

import pytest

import greenlet as greenlet_package
from greenlet import getcurrent, greenlet, inspect

from test_gltop_batch import GLTOP, Odd
from package_under_test import require_gevent
from test_monitor_command import ENVIRONMENT

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "hazards", "stack_hazards.c")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The directory where stack_hazards is built."""
    directory = tmp_path_factory.mktemp("stack_hazards")
    target = os.path.join(directory, "stack_hazards" +
                          sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(["cc", "-shared", "-fPIC", "-pthread", "-O0", "-g",
                    "-Wall", "-Werror",
                    "-I" + sysconfig.get_paths()["include"],
                    "-I" + os.path.dirname(greenlet_package.__file__),
                    SOURCE, "-o",
                    target], check=True, timeout=120)
    return str(directory)


@pytest.fixture(scope="module")
def stack_hazards(built):
    directory = built
    sys.path.insert(0, str(directory))
    try:
        import stack_hazards
        yield stack_hazards
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop("stack_hazards", None)


def deeper(depth, then):
    """Calls then() from `depth` Python calls down, so that the caller's
    C stack reaches over the addresses a suspended greenlet left."""
    return then() if depth == 0 else deeper(depth - 1, then)


def run_with_stack_hazards(program, built, **environment):
    """Runs `program` in a new interpreter that can import stack_hazards
    (its path is sys.argv[1]), with ENVIRONMENT and `environment`."""
    return subprocess.run(
        [sys.executable, "-c", program, built], capture_output=True,
        text=True, timeout=60, env=dict(ENVIRONMENT, **environment))


def test_a_global_pointer_to_a_stack_buffer_is_found(stack_hazards):
    main = getcurrent()
    keeper = greenlet(lambda: stack_hazards.keep_and_call(main.switch))
    keeper.switch()  # suspended inside keep_and_call, its buffer saved
    hits = deeper(30, inspect.audit)
    assert len(hits) == 1, [(h["place"], h["object"], h["symbol"], h["thread"], h["allocation"], [(c["greenlet_id"], c["saved"], c["frame"] and c["frame"]["function"]) for c in h["candidates"]]) for h in hits]
    hit, = hits
    assert hit["place"] == "object"
    assert os.path.basename(hit["object"]).startswith("stack_hazards")
    assert hit["symbol"] == "stack_hazards_kept"
    assert hit["symbol_offset"] == 0
    assert hit["greenlet"] is keeper
    assert hit["greenlet_id"] == [r["id"] for r in inspect.snapshot()
                                  if r["state"] == "suspended"
                                  and r["saved_bytes"]][-1]
    region = hit["saved_region"]
    assert region["start"] <= hit["pointer"] < region["end"]
    assert hit["stack_offset"] == hit["pointer"] - region["start"]
    # The pointer names keep_and_call's buffer: its frame, and its bytes.
    assert hit["frame"]["function"] == "keep_and_call"
    assert inspect.read_stack(keeper, hit["pointer"], 64) == b"k" * 64
    # Flagged in snapshots and in the tree, until an audit finds it clean.
    flagged = [r for r in inspect.snapshot() if r["hazard"]]
    assert [r["id"] for r in flagged] == [hit["greenlet_id"]]
    assert "suspended  HAZARD" in inspect.format_tree()
    keeper.switch()  # keep_and_call returns and forgets the pointer
    assert keeper.dead
    assert deeper(30, inspect.audit) == []


def test_a_registered_stack_record_is_found(stack_hazards):
    main = getcurrent()
    registrar = greenlet(lambda: stack_hazards.register_and_call(
        lambda: (main.switch(), stack_hazards.fire())[1]))
    registrar.switch()
    hits = inspect.audit()
    assert [h["symbol"] for h in hits] == ["stack_hazards_registry"]
    assert hits[0]["symbol_offset"] == 0  # the first slot
    assert hits[0]["greenlet"] is registrar
    assert hits[0]["frame"]["function"] == "register_during"
    # Fired while its owner runs, the callback is fine: one call counted.
    assert registrar.switch() == 1
    assert registrar.dead
    assert inspect.audit() == []


@pytest.mark.parametrize("size,from_thread", [
    (64, False),          # a small chunk of the main arena's heap
    (64, True),           # a chunk of another arena (another thread's)
    (40 << 20, False),    # a chunk mapped on its own (over glibc's
                          # largest mmap threshold, 32 MiB)
])
def test_a_heap_record_pointing_at_a_stack_buffer_is_found(
        stack_hazards, size, from_thread):
    main = getcurrent()

    keeper = greenlet(lambda: stack_hazards.keep_in_heap_and_call(
        lambda: main.switch(), size, from_thread, False))
    keeper.switch()
    record = stack_hazards.heap_record()
    hits = deeper(30, inspect.audit)
    heap = [h for h in hits if h["place"] == "heap"]
    assert len(heap) == 1, hits
    hit, = heap
    assert hit["holder"] == record + 16
    assert hit["allocation"]["start"] == record
    assert hit["allocation"]["size"] >= size
    assert hit["object"] is None and hit["symbol"] is None
    assert hit["greenlet"] is keeper and hit["saved"] is True
    assert hit["frame"]["function"] == "keep_in_heap_and_call"
    assert inspect.read_stack(keeper, hit["pointer"], 64) == b"m" * 64
    keeper.switch()
    assert keeper.dead and stack_hazards.heap_record() == 0
    assert [h for h in deeper(30, inspect.audit) if h["place"] == "heap"] \
        == []


def test_a_stale_pointer_in_freed_memory_is_not_a_hit(stack_hazards):
    main = getcurrent()
    keeper = greenlet(lambda: stack_hazards.keep_in_heap_and_call(
        lambda: main.switch(), 48, False, True))
    keeper.switch()
    assert deeper(30, inspect.audit) == []
    keeper.switch()


def thread_stack_hits():
    """The audit's hits on other threads' stacks, once there are any (a
    worker's stack is scanned when it waits in a system call)."""
    hits = []
    for _ in range(100):
        hits = [h for h in inspect.audit() if h["place"] == "thread stack"]
        if hits:
            break
        time.sleep(0.01)
    return hits


def test_a_worker_thread_holding_a_stack_address_is_found(stack_hazards):
    main = getcurrent()
    lender = greenlet(lambda: stack_hazards.lend_to_worker(main.switch))
    lender.switch()  # suspended; the worker waits with the address
    hit, = thread_stack_hits()  # the worker waits in its read
    assert hit["greenlet"] is lender
    assert hit["frame"]["function"] == "lend_to_worker"
    assert hit["thread"] != threading.get_native_id()  # the worker's
    assert hit["object"] is None and hit["symbol"] is None
    assert inspect.read_stack(lender, hit["pointer"], 4) == b"llll"
    # Resumed, the lender lets the worker write, in its own buffer now.
    assert lender.switch() == b"wlll"
    assert inspect.audit() == []


def test_the_periodic_audit_reports_each_new_hit_once(stack_hazards):
    main = getcurrent()
    reported = []
    inspect.audit_every(0.02, reported.append)
    try:
        keeper = greenlet(lambda: stack_hazards.keep_and_call(main.switch))
        keeper.switch()
        deadline = time.monotonic() + 10
        while not reported and time.monotonic() < deadline:
            time.sleep(0.01)  # the audit thread runs meanwhile
        time.sleep(0.2)       # ten more rounds: still reported once
        assert [hit["symbol"] for hit in reported] == ["stack_hazards_kept"]
        assert reported[0]["greenlet"] is keeper
        line = inspect._describe_hazard(reported[0])
        assert line.startswith("greenlet hazard: stack_hazards_kept+0x0 in ")
        assert line.endswith("in keep_and_call()")
        keeper.switch()
    finally:
        inspect.audit_every(None)
    assert not any(t.name == "greenlet-audit" for t in threading.enumerate())
    with pytest.raises(ValueError):
        inspect.audit_every(0)


def test_the_environment_starts_the_periodic_audit(built):
    program = ("import sys, time; sys.path.insert(0, sys.argv[1])\n"
               "import stack_hazards\n"
               "from greenlet import getcurrent, greenlet\n"
               "main = getcurrent()\n"
               "g = greenlet(lambda: stack_hazards.keep_and_call(\n"
               "    main.switch))\n"
               "g.switch(); time.sleep(0.5); g.switch()\n")
    completed = run_with_stack_hazards(program, built,
                                       GREENLET_AUDIT_EVERY="0.05")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("greenlet hazard: stack_hazards_kept+0x0 ")
    # GREENLET_AUDIT_LOG: the same line, with the pid, in the file.
    log = os.path.join(built, "audit.log")
    logged = run_with_stack_hazards(program, built,
                                    GREENLET_AUDIT_EVERY="0.05",
                                    GREENLET_AUDIT_LOG=log)
    assert logged.returncode == 0 and logged.stderr == "", logged.stderr
    with open(log) as log_file:
        pid, line = log_file.read().rstrip("\n").split(" ", 1)
    assert int(pid) > 0
    assert line.startswith("greenlet hazard: stack_hazards_kept+0x0 ")
    # `python -m greenlet.inspect` runs cleanly with the audit on.
    helped = subprocess.run(
        [sys.executable, "-m", "greenlet.inspect", "--help"],
        capture_output=True, text=True, timeout=60,
        env=dict(ENVIRONMENT, GREENLET_AUDIT_EVERY="0.05"))
    assert helped.returncode == 0 and helped.stderr == "", helped.stderr
    bad = subprocess.run([sys.executable, "-c", "import greenlet"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(ENVIRONMENT, GREENLET_AUDIT_EVERY="soon"))
    assert bad.returncode == 0
    assert "is not a positive number" in bad.stderr


def test_nothing_is_found_without_such_an_extension():
    main = getcurrent()
    parked = [greenlet(lambda: deeper(20, main.switch)) for _ in range(10)]
    for g in parked:
        g.switch()
    assert all(r["saved_bytes"] for r in inspect.snapshot()
               if r["state"] == "suspended" and not r["main"])
    assert deeper(40, inspect.audit) == []
    for g in parked:
        g.switch()


GEVENT_PROGRAM = r"""
import sys
import gevent, gevent.server, gevent.socket
from greenlet import inspect
sys.path.insert(0, sys.argv[1])
from gevent_echo import echo  # the demo's handler

def client(port, results):
    with gevent.socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(5):
            sock.sendall(b"x")
            assert sock.recv(16) == b"x"
        results.append(inspect.audit())  # from a client greenlet
        gevent.sleep(0.2)

server = gevent.server.StreamServer(("127.0.0.1", 0), echo)
server.start()
results = []
clients = [gevent.spawn(client, server.server_port, results)
           for _ in range(20)]
gevent.sleep(0.1)
results.append(inspect.audit())  # from the main greenlet, all parked
gevent.joinall(clients, raise_error=True)
print(sum(len(found) for found in results), len(results))
"""


def test_a_clean_gevent_server_reports_nothing():
    require_gevent()
    completed = subprocess.run(
        [sys.executable, "-c", GEVENT_PROGRAM,
         os.path.join(HERE, "..", "workloads")], capture_output=True,
        text=True, timeout=120,
        env=dict(os.environ, GEVENT_RESOLVER="block"))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["0", "21"]  # 21 audits, no hit


def inspect_command(*arguments):
    return subprocess.run([sys.executable, "-m", "greenlet.inspect"]
                          + list(arguments), capture_output=True, text=True,
                          timeout=120, env=ENVIRONMENT)


def test_the_command_audits_another_process_and_gltop_flags_h(built):
    hazardous = Odd("hazard", built)
    clean = Odd("spawner")
    try:
        completed = inspect_command("audit", str(hazardous.pid))
        assert completed.returncode == 8, completed.stderr
        lines = completed.stdout.splitlines()
        assert lines[0] == ("pid %d: 1 hazard: words that point into a "
                            "suspended greenlet's saved stack"
                            % hazardous.pid)
        assert lines[1].startswith("  stack_hazards_kept+0x0 (")
        # "first", parked from main at the same depth, has the address
        # saved too; keeper's frame there is the extension's own.
        assert lines[2].startswith("    its greenlet #")
        assert " in keep_and_call+0x" in lines[2]
        assert all(line.startswith("    or greenlet #") for line in lines[3:])
        as_json = json.loads(inspect_command("audit", str(hazardous.pid),
                                             "--json").stdout)
        kept = [h for h in as_json["hazards"]
                if h["frame"] == "keep_and_call"]
        hit, = kept
        assert hit["symbol"] == "stack_hazards_kept"
        assert hit["start"] <= hit["pointer"] < hit["end"]
        # The audit flagged the greenlet: the monitor publishes it as H.
        published = subprocess.run(
            [GLTOP, "-b", "-p", str(hazardous.pid), "-n", "1", "--json"],
            capture_output=True, text=True, timeout=60)
        rows = json.loads(published.stdout)["greenlets"]
        flagged = sorted(r["name"] for r in rows if r["hazard"])
        assert flagged == ["first", "keeper"]  # every greenlet it may mean
        assert hit["greenlet_id"] == [r["id"] for r in rows
                                      if r["name"] == "keeper"][0]
        # The command's view of the process flags it too.
        viewed = json.loads(inspect_command(str(hazardous.pid),
                                            "--json").stdout)
        assert sorted(r["name"] for r in viewed["greenlets"]
                      if r["hazard"]) == ["first", "keeper"]
        assert "suspended  HAZARD  keeper" in inspect_command(
            str(hazardous.pid)).stdout
        # A process without the hazard: nothing, status 0.
        completed = inspect_command("audit", str(clean.pid))
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout == "pid %d: no hazard found\n" % clean.pid
    finally:
        hazardous.close()
        clean.close()
    assert inspect_command("audit", "0").returncode == 2


def test_gltop_lists_the_hits_in_the_detail_pane(built, tmp_path):
    from test_gltop_screen import Screen, row_of
    hazardous = Odd("hazard", built)
    screen = Screen(tmp_path, "-p", hazardous.pid, "-d", "0.3", width=140,
                    height=45)
    try:
        # Watched, and written through once: the pane lists the write.
        assert inspect_command("audit", str(hazardous.pid),
                               "--watch").returncode == 8
        hazardous.process.stdin.write("write\n")
        hazardous.process.stdin.flush()
        assert hazardous.process.stdout.readline() == "wrote\n"
        text = screen.wait_for(lambda t: "keeper" in t and
                               " H " in row_of(t, "keeper"))
        rows = [line for line in text.split("\n")[4:] if line.strip()]
        index = [i for i, line in enumerate(rows) if "keeper" in line][0]
        screen.keys(*["Down"] * index)
        screen.keys("Enter")
        # The pane asks the process for an audit: its answer comes later.
        text = screen.wait_for_text("stack_hazards_kept+0x0 (stack_hazards")
        hit = [line for line in text.split("\n")
               if "stack_hazards_kept+0x0 (stack_hazards" in line]
        assert len(hit) == 1, text
        assert hit[0].endswith("in keep_and_call()")
        wrote = [line.strip() for line in text.split("\n")
                 if " wrote to 0x" in line]
        assert len(wrote) == 1, text
        assert wrote[0].startswith("thread %d wrote to 0x" % hazardous.pid)
        assert ", by the holder's code (saved): write_kept+0x" in wrote[0]
    finally:
        screen.close()
        hazardous.close()


# ------------------------------------------------------------- watches

def frames_of(write):
    return [(frame["function"], os.path.basename(frame["object"]))
            for frame in write["frames"]]


def in_stack_hazards(write):
    return [function for function, object_name in frames_of(write)
            if object_name.startswith("stack_hazards")]


@pytest.fixture
def watches():
    """Watches made in a test are taken down after it."""
    yield
    inspect.unwatch()


def test_a_worker_thread_writing_into_a_saved_stack_is_caught(
        stack_hazards, watches):
    main = getcurrent()
    before = len(inspect.watch_writes())
    lender = greenlet(lambda: stack_hazards.lend_to_waiting_worker(
        main.switch))
    lender.switch()  # suspended, its bytes saved; the worker waits
    try:
        hits = thread_stack_hits()  # the pointer in the waiting worker
        assert hits and hits[0]["greenlet"] is lender
        watched, = inspect.watch(hits)
        assert watched["address"] == hits[0]["pointer"]
        assert watched["greenlet_id"] == hits[0]["greenlet_id"]
        assert watched["armed"]  # the bytes are saved while main runs
    finally:
        stack_hazards.release_worker()  # it writes now
    deadline = time.monotonic() + 10
    while len(inspect.watch_writes()) == before and \
            time.monotonic() < deadline:
        time.sleep(0.02)
    write, = inspect.watch_writes()[before:]
    assert write["kind"] == "from another thread"
    assert write["writer_native_id"] == hits[0]["thread"]  # the worker
    assert write["writer_native_id"] != threading.get_native_id()
    assert write["greenlet"] is lender and write["saved"] is True
    assert write["address"] == hits[0]["pointer"]
    # The worker's backtrace: its store in waiting_worker, a static function
    # of the extension (named from its .symtab), under the thread's start.
    assert frames_of(write)[0][0] == "waiting_worker"
    assert in_stack_hazards(write) == ["waiting_worker"]
    from greenlet._watch import _describe_write
    line = _describe_write(write)
    assert ("wrote to 0x%x, from another thread, in the saved stack of "
            "greenlet #%d, from waiting_worker (stack_hazards"
            % (write["address"], write["greenlet_id"])) in line
    lender.switch()
    assert lender.dead
    assert inspect.watching() == []  # a dead greenlet's watch goes


def test_writes_through_a_kept_global_and_a_registered_record_are_caught(
        stack_hazards, watches):
    main = getcurrent()
    before = len(inspect.watch_writes())
    keeper = greenlet(lambda: stack_hazards.keep_and_call(main.switch))
    keeper.switch()
    # The audit's hit in the extension's data: stack_hazards_kept.
    kept, = inspect.watch([h for h in inspect.audit()
                           if h["symbol"] == "stack_hazards_kept"])
    assert kept["greenlet_id"] == inspect.audit()[0]["greenlet_id"]
    # Case 3: registered through the C API (greenlet.h), no audit needed.
    registrar = greenlet(lambda: stack_hazards.register_watched_and_call(
        lambda: main.switch()))
    registrar.switch()
    assert len(inspect.watching()) == 2
    assert all(w["armed"] for w in inspect.watching())
    assert stack_hazards.write_kept() is True      # from main
    assert stack_hazards.touch_registered() == 1   # from main
    writes = inspect.watch_writes()[before:]
    # Both greenlets started at the same depth: an address may be in both
    # saved stacks, and a store then caught for each.
    caught = {(w["greenlet"], in_stack_hazards(w)[0]) for w in writes}
    assert (keeper, "write_kept") in caught, writes
    assert (registrar, "touch_registered") in caught, writes
    assert {w["kind"] for w in writes} == {"by the holder's code"}
    assert all(w["writer_native_id"] == threading.get_native_id()
               for w in writes)
    # Resumed, a greenlet's own address is not trapped: no new write.
    count = len(inspect.watch_writes())
    assert keeper.switch() is None or keeper.dead
    assert registrar.switch() == 0
    assert len(inspect.watch_writes()) == count


def test_without_perf_events_the_watch_says_why(built):
    """seccomp is not at hand; ulimit-free: a process whose perf events
    are refused by the kernel's paranoia cannot be made as root, so the
    refusal is simulated by a seccomp-less trick: LD_PRELOAD of a
    perf_event_open that fails with EACCES."""
    shim = os.path.join(built, "no_perf.so")
    source = os.path.join(built, "no_perf.c")
    with open(source, "w") as out:
        out.write("#define _GNU_SOURCE\n#include <errno.h>\n"
                  "#include <stdarg.h>\n#include <sys/syscall.h>\n"
                  "#include <unistd.h>\n#include <dlfcn.h>\n"
                  "long syscall(long number, ...) {\n"
                  "  va_list a; va_start(a, number);\n"
                  "  long x[6]; for (int i = 0; i < 6; i++)"
                  " x[i] = va_arg(a, long);\n  va_end(a);\n"
                  "  if (number == SYS_perf_event_open) {"
                  " errno = EACCES; return -1; }\n"
                  "  long (*real)(long, ...) = (long (*)(long, ...))"
                  "dlsym(RTLD_NEXT, \"syscall\");\n"
                  "  return real(number, x[0], x[1], x[2], x[3], x[4],"
                  " x[5]);\n}\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", source, "-o", shim,
                    "-ldl"], check=True, timeout=120)
    program = ("import sys; sys.path.insert(0, sys.argv[1])\n"
               "import stack_hazards\n"
               "from greenlet import getcurrent, greenlet, inspect\n"
               "main = getcurrent()\n"
               "g = greenlet(lambda: stack_hazards.keep_and_call("
               "main.switch))\ng.switch()\n"
               "assert len(inspect.audit()) == 1  # the audit still works\n"
               "try:\n    inspect.watch()\n"
               "except inspect.WatchUnavailable as error:\n"
               "    print(error)\n"
               "g.switch()\n")
    preload = " ".join(filter(None, [os.environ.get("LD_PRELOAD"), shim]))
    completed = run_with_stack_hazards(program, built, LD_PRELOAD=preload)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(
        "hardware watchpoints are not available here: perf_event_open: "
        "Permission denied (see /proc/sys/kernel/perf_event_paranoid"), \
        completed.stdout


def test_a_stray_debug_trap_does_not_end_a_watching_process(built):
    """A debug exception that no watch's event claims reaches a process
    that uses hardware breakpoints as SIGTRAP (si_code TRAP_HWBKPT, or
    TRAP_BRKPT); it is dropped once a watch exists. Any other SIGTRAP
    still ends the process, as without watches. (x86-64: elsewhere the
    breakpoint instruction's own trap is TRAP_BRKPT, and is not dropped.)"""
    if os.uname().machine != "x86_64":
        pytest.skip("stray debug traps are dropped on x86-64 only")
    program = ("import ctypes, os, signal, sys; sys.path.insert(0, sys.argv[1])\n"
               "import stack_hazards\n"
               "from greenlet import getcurrent, greenlet, inspect\n"
               "main = getcurrent()\n"
               "g = greenlet(lambda: stack_hazards.keep_and_call(main.switch))\n"
               "g.switch()\n"
               "inspect.watch()\n"
               "libc = ctypes.CDLL(None, use_errno=True)\n"
               "for code in (4, 1):  # TRAP_HWBKPT, TRAP_BRKPT\n"
               "    info = (ctypes.c_int * 32)()\n"
               "    info[0], info[2] = signal.SIGTRAP, code\n"
               "    result = libc.syscall(297, os.getpid(), libc.gettid(), "
               "signal.SIGTRAP, info)  # rt_tgsigqueueinfo\n"
               "    assert result == 0, ctypes.get_errno()\n"
               "print('survived', flush=True)\n"
               "os.kill(os.getpid(), signal.SIGTRAP)  # SI_USER: not stray\n"
               "print('not reached')\n")
    completed = run_with_stack_hazards(program, built)
    assert completed.stdout == "survived\n", completed.stderr
    assert completed.returncode == -signal.SIGTRAP, completed.stderr


def test_the_command_watches_another_process_and_lists_its_writes(built):
    hazardous = Odd("hazard", built)
    try:
        watched = inspect_command("audit", str(hazardous.pid), "--watch")
        assert watched.returncode == 8, watched.stderr
        assert "  watching 1 address for writes" in watched.stdout
        assert " wrote to " not in watched.stdout  # nothing written yet
        hazardous.process.stdin.write("write\n")
        hazardous.process.stdin.flush()
        assert hazardous.process.stdout.readline() == "wrote\n"
        audited = inspect_command("audit", str(hazardous.pid))
        assert audited.returncode == 8, audited.stderr
        lines = audited.stdout.splitlines()
        assert ("pid %d: 1 write caught through watched addresses"
                % hazardous.pid) in lines, audited.stdout
        wrote, = [line for line in lines if " wrote to 0x" in line]
        assert (" by the holder's code, in the saved stack of greenlet #"
                in wrote)
        assert " from write_kept+0x" in wrote and "(stack_hazards" in wrote
        as_json = json.loads(inspect_command(
            "audit", str(hazardous.pid), "--json").stdout)
        write, = as_json["writes"]
        assert write["kind"] == "by the holder's code"
        assert write["state"] == "saved"
        assert write["writer_native_id"] == hazardous.pid  # its main thread
        assert write["frames"].startswith("write_kept+0x")
    finally:
        hazardous.close()


def test_odd_heaps_are_walked(stack_hazards):
    """A chunk mapped on its own right above another anonymous mapping
    (the kernel merges them into one line of /proc/self/maps), and a
    record in an arena heap that its arena outgrew (it ends in glibc's
    fenceposts, not in a top chunk)."""
    libc = ctypes.CDLL(None)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                          ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    main = getcurrent()

    def heap_hits():
        return [h["allocation"]["start"] for h in deeper(30, inspect.audit)
                if h["place"] == "heap"]

    keeper = greenlet(lambda: stack_hazards.keep_in_heap_and_call(
        main.switch, 40 << 20, False, False))  # mapped on its own
    keeper.switch()
    record = stack_hazards.heap_record()
    # Under AddressSanitizer, whose allocator replaces malloc, the chunk is
    # not glibc's and the page below it is the sanitizer's own.
    sanitized = "libasan" in os.environ.get("LD_PRELOAD", "")
    below = None if sanitized else libc.mmap(
        record - 16 - (1 << 20), 1 << 20, 3, 0x22 | 0x100000,  # NOREPLACE
        -1, 0)
    try:
        if not sanitized:
            assert below == record - 16 - (1 << 20)
            ctypes.memset(below, 1, 1 << 20)
        assert heap_hits() == [record]
    finally:
        if below:
            libc.munmap(below, 1 << 20)
        keeper.switch()
    filled = []

    def fill():  # more than one 64 MiB heap of this thread's arena
        chunks = [libc.malloc(1000) for _ in range(80000)]
        for hole in chunks[100:120]:
            libc.free(hole)  # room early in the arena's first heap
        filled.extend(chunks[:100] + chunks[120:])

    filler = threading.Thread(target=fill)
    filler.start()
    filler.join()
    try:
        keeper = greenlet(lambda: stack_hazards.keep_in_heap_and_call(
            main.switch, 1000, True, False))
        keeper.switch()
        assert heap_hits() == [stack_hazards.heap_record()]
        keeper.switch()
    finally:
        for chunk in filled:
            libc.free(chunk)


def test_watches_are_per_greenlet_and_not_the_childs_after_fork(
        stack_hazards, watches):
    main = getcurrent()
    first = greenlet(lambda: stack_hazards.register_watched_and_call(
        main.switch))
    second = greenlet(lambda: stack_hazards.register_watched_and_call(
        main.switch))
    first.switch()
    second.switch()
    assert len(inspect.watching()) == 2  # the same address, two greenlets
    first.switch()  # it unregisters: its watch goes, the other's stays
    assert [w["greenlet_id"] for w in inspect.watching()] == [
        r["id"] for r in inspect.snapshot() if r["name"] == repr(second)]
    second.switch()
    assert inspect.watching() == []
    # A child after fork does not touch the parent's watchpoints.
    before = len(inspect.watch_writes())
    keeper = greenlet(lambda: stack_hazards.keep_and_call(main.switch))
    keeper.switch()
    inspect.watch()
    pid = os.fork()
    if pid == 0:
        code = 0 if inspect.watching() == [] else 1
        keeper.switch()  # would disarm the parent's events, were they ours
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert [w["armed"] for w in inspect.watching()] == [True]
    assert stack_hazards.write_kept() is True
    assert len(inspect.watch_writes()) == before + 1
    keeper.switch()
