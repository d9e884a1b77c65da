"""gltop's interactive screen, driven as a person would drive it: in a tmux
session (send-keys, capture-pane), against live workloads
(tests/workloads/known_greenlets.py). It checks the greenlets and their
tree, sorting, the flat view, filtering, the detail pane, the B flag,
resizing, quitting, and the process picker with a watched process that
exits. Each test has a tmux server of its own."""
import os
import re
import shlex
import subprocess
import sys
import time

import pytest

from package_under_test import REPOSITORY
from test_gltop_batch import GLTOP
from test_monitor_command import FAKE_SEGMENT, NOBODY, Workload, unused_pid


# gltop must take its size from its terminal. An explicit environment:
# GNU readline, once loaded in the test process (3.13's pdb loads it),
# puts LINES and COLUMNS into the C environment, which children would
# inherit and curses would believe.
TERMINAL_ENVIRONMENT = {name: value for name, value in os.environ.items()
                        if name not in ("LINES", "COLUMNS")}


class Screen:
    """gltop in a detached tmux session of a given size."""

    def __init__(self, tmp_path, *arguments, width=100, height=30,
                 prefix=()):
        self.socket = str(tmp_path / "tmux.socket")
        config = tmp_path / "tmux.conf"
        config.write_text("set -g remain-on-exit on\n")  # to read it last
        # The shell around gltop keeps its exit status in a file, and the
        # pane alive a little after it, so that a message written just
        # before a quick exit can still be read on the screen.
        self.status_file = tmp_path / "status"
        command = "%s; echo $? > %s; sleep 1" % (
            " ".join(shlex.quote(str(a))
                     for a in list(prefix) + [GLTOP] + list(arguments)),
            shlex.quote(str(self.status_file)))
        self.tmux("-f", str(config), "new-session", "-d", "-x", str(width),
                  "-y", str(height), command)

    def tmux(self, *arguments):
        return subprocess.run(["tmux", "-S", self.socket] + list(arguments),
                              capture_output=True, text=True, check=True,
                              timeout=30, env=TERMINAL_ENVIRONMENT).stdout

    def text(self, escapes=False):
        """What the screen shows; with escapes, its colours and
        attributes too, as terminal escape sequences."""
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []))

    def lines(self):
        return self.text().split("\n")

    def keys(self, *keys):
        for key in keys:
            self.tmux("send-keys", key)
            time.sleep(0.05)  # one key at a time, as typed

    def wait_for(self, check, timeout=15):
        """Polls the screen until check(text) is true; returns the text."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError("the screen never showed what was "
                                     "expected; it shows:\n" + text)
            time.sleep(0.1)

    def wait_for_text(self, needle, timeout=15):
        return self.wait_for(lambda text: needle in text, timeout)

    def exit_status(self, timeout=10):
        """gltop's exit status, once it has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status_file.exists():
                written = self.status_file.read_text()
                if written.endswith("\n"):
                    return int(written)
            time.sleep(0.1)
        raise AssertionError("gltop did not exit:\n" + self.text())

    def record(self, seconds):
        """The bytes gltop sends to its terminal for `seconds`."""
        raw = os.path.join(os.path.dirname(self.socket), "raw")
        self.tmux("pipe-pane", "-o", "cat >> %s" % shlex.quote(raw))
        time.sleep(seconds)
        self.tmux("pipe-pane")  # stops it
        time.sleep(0.1)
        with open(raw, "rb") as output:
            return output.read()

    def resize(self, width, height):
        self.tmux("resize-window", "-x", str(width), "-y", str(height))

    def close(self):
        subprocess.run(["tmux", "-S", self.socket, "kill-server"],
                       capture_output=True, timeout=30)


def row_of(text, name):
    """The one line that shows greenlet `name`."""
    rows = [line for line in text.split("\n")
            if re.search(r"\b%s\b" % re.escape(name), line)]
    assert len(rows) == 1, (name, text)
    return rows[0]


def column_of_name(text, name):
    """Where greenlet `name` starts on its line: its indentation."""
    return row_of(text, name).index(name)


def greenlet_rows(text):
    """The rows of the list, as (id, state, name-and-where)."""
    rows = []
    for line in text.split("\n")[4:]:
        match = re.match(r"\s*(\d+) (run|susp|new|dead)\s", line)
        if match:
            rows.append((int(match.group(1)), match.group(2), line))
    return rows


@pytest.fixture
def plain():
    workload = Workload("plain")
    yield workload
    workload.close()


@pytest.fixture
def screens(tmp_path):
    opened = []

    def open_screen(*arguments, **size):
        directory = tmp_path / str(len(opened))
        directory.mkdir()
        screen = Screen(directory, *arguments, **size)
        opened.append(screen)
        return screen
    yield open_screen
    for screen in opened:
        screen.close()


def test_the_list_shows_the_tree_and_the_header(plain, screens):
    screen = screens("-p", plain.pid, "-d", "0.3", width=120)
    text = screen.wait_for_text("never-started")
    lines = text.split("\n")
    header = "gltop - pid %d " % plain.pid
    runtime = "CPython %d.%d." % sys.version_info[:2]
    assert lines[0].startswith(header) and runtime in lines[0]
    # The command line, cut to what the width leaves (the checkout's path
    # is part of it), then the runtime.
    with open("/proc/%d/cmdline" % plain.pid) as cmdline:
        command = cmdline.read().rstrip("\0").replace("\0", " ")
    shown = lines[0][len(header):lines[0].index(runtime)].rstrip()
    assert len(shown) >= 20 and command.startswith(shown)
    assert lines[1].startswith("threads 1  greenlets 7 (1 run, 5 susp, 1 new)")
    assert lines[2].startswith("switches/s ")
    assert lines[3].split()[:4] == ["ID^", "STATE", "THR", "HEAP"]
    rows = greenlet_rows(text)
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6, 7, 8]  # tree order
    assert [r[1] for r in rows] == ["run", "susp", "susp", "susp", "susp",
                                    "susp", "new", "dead"]
    main = column_of_name(text, "main greenlet")
    assert column_of_name(text, "first-worker") == main + 2
    assert column_of_name(text, "nested") == main + 4  # first-worker's child
    assert column_of_name(text, "in-qsort") == main + 2
    assert "compare known_greenlets.py:" in row_of(text, "in-qsort")
    assert "nested_body known_greenlets.py:" in row_of(text, "nested")
    # Saved stack bytes: suspended greenlets hold some, the others none.
    heap = {r[0]: r[2].split()[3] for r in rows}
    assert heap[1] == "0" and heap[7] == "0" and heap[8] == "0"
    assert all(heap[i] != "0" for i in (2, 3, 4, 5, 6))
    screen.keys("q")
    assert screen.exit_status() == 0


def test_sorting_and_the_flat_view(plain, screens):
    screen = screens("-p", plain.pid, "-d", "0.3")
    screen.wait_for_text("never-started")
    screen.keys("t")
    text = screen.wait_for(lambda t: "(tree)" not in t)
    assert column_of_name(text, "nested") == column_of_name(text,
                                                            "first-worker")
    screen.keys("Down", "Down")  # the selection on nested (id 3)
    screen.keys("s", "s", "s")  # id -> state -> thread -> heap
    text = screen.wait_for(lambda t: "HEAPv" in t)
    selected, = [line for line in screen.text(escapes=True).split("\n")[4:]
                 if re.match(r"(\x1b\[30m)?\x1b\[46m +\d", line)]
    assert "nested" in selected  # it followed its greenlet
    rows = greenlet_rows(text)
    assert rows[0][0] == 6  # in-qsort holds the most (qsort's frames)
    sizes = [r[2].split()[3] for r in rows]
    assert sizes[-3:] == ["0", "0", "0"]  # running, new and dead last
    screen.keys("I")
    text = screen.wait_for(lambda t: "HEAP^" in t)
    assert greenlet_rows(text)[-1][0] == 6
    screen.keys("<")  # back to the thread column, ties by id
    text = screen.wait_for(lambda t: re.search(r"THR[v^]", t))
    assert [r[0] for r in greenlet_rows(text)] == [1, 2, 3, 4, 5, 6, 7, 8]
    screen.keys("t")
    text = screen.wait_for(lambda t: "(tree)" in t)
    assert column_of_name(text, "nested") == column_of_name(
        text, "first-worker") + 2
    screen.keys("C-c")  # quits as q does, the terminal restored
    assert screen.exit_status() == 0


def test_the_filter_keeps_the_ancestors(plain, screens):
    screen = screens("-p", plain.pid, "-d", "0.3")
    screen.wait_for_text("never-started")
    screen.keys("/", "n", "e", "s", "t")
    text = screen.wait_for(lambda t: "never-started" not in t)
    assert "filter: nest" in text.split("\n")[-2] + text.split("\n")[-1]
    assert [r[0] for r in greenlet_rows(text)] == [1, 2, 3]  # and ancestors
    screen.keys("Enter")
    text = screen.wait_for_text('filter "nest"')
    screen.keys("/", "Escape")
    text = screen.wait_for(lambda t: "never-started" in t and
                           'filter "' not in t)
    assert len(greenlet_rows(text)) == 8


def test_the_detail_pane_shows_the_stacks(plain, screens):
    screen = screens("-p", plain.pid, "-d", "0.3", height=45)
    screen.wait_for_text("never-started")
    screen.keys("Down", "Down", "Down", "Down", "Down")  # to in-qsort
    screen.keys("Enter")
    text = screen.wait_for_text("Native stack")
    lines = text.split("\n")
    assert lines[0] == "gltop - pid %d - greenlet #6" % plain.pid
    assert "name        in-qsort" in text
    assert "state       suspended" in text
    assert "parent      #1 main greenlet" in text
    saved = re.search(r"saved   0x([0-9a-f]+) - 0x([0-9a-f]+)  \S+ \((\d+) "
                      r"bytes\), copied to the heap", text)
    assert saved, text
    start, end, size = (int(saved.group(1), 16), int(saved.group(2), 16),
                        int(saved.group(3)))
    assert end - start == size > 0
    view = plain.self_view()["by_id"][6]
    assert size == view["saved_bytes"]
    python = text[text.index("Python stack"):text.index("Native stack")]
    assert re.search(r"^  compare +known_greenlets\.py:\d+$", python,
                     re.M), python
    assert "sort_with_callback" in python
    native = text[text.index("Native stack"):]
    # libc's qsort, or ASan's interceptor of it when the tests run with it
    assert re.search(r"0x[0-9a-f]+  \S*qsort\S*\+0x[0-9a-f]+  lib", native), \
        native
    assert "no hazard flagged" in text
    screen.keys("Escape")
    text = screen.wait_for_text("never-started")
    assert text.startswith("gltop - pid %d /" % plain.pid)


def test_a_busy_greenlet_is_flagged_b(screens):
    busy = Workload("busy")
    try:
        screen = screens("-p", busy.pid, "-d", "0.3", "-B", "0.5")
        text = screen.wait_for_text("1 blocked")
        spinner = row_of(text, "spinner")
        assert re.search(r" run .* B +spinner  spin known_greenlets\.py:",
                         spinner), spinner
        assert " B " not in row_of(text, "first-worker")
    finally:
        busy.close()


def test_resizing_redraws_to_fit(plain, screens):
    screen = screens("-p", plain.pid, "-d", "0.3", width=120, height=40)
    screen.wait_for_text("never-started")
    screen.resize(80, 24)
    text = screen.wait_for(lambda t: len(t.split("\n")) <= 25 and
                           "never-started" in t)
    lines = text.split("\n")
    assert all(len(line) <= 80 for line in lines)
    assert lines[3].split()[0] == "ID^"
    assert lines[23].startswith("Enter detail")  # the footer, on the last line
    screen.resize(60, 12)  # smaller than it is meant for: no crash
    screen.wait_for(lambda t: len(t.split("\n")) <= 13)
    screen.resize(100, 30)
    text = screen.wait_for(lambda t: "CPython" in t)
    assert len(greenlet_rows(text)) == 8
    screen.keys("q")
    assert screen.exit_status() == 0


def test_the_picker_and_a_process_that_exits(screens):
    workload = Workload("plain")
    try:
        screen = screens("-d", "0.3")
        text = screen.wait_for(
            lambda t: re.search(r"^ *%d +1 +7 " % workload.pid, t, re.M))
        assert text.startswith("gltop - processes that use greenlets")
        listed = [int(m) for m in re.findall(r"^ *(\d+) ", text, re.M)]
        screen.keys(*["Down"] * listed.index(workload.pid))
        screen.keys("Enter")
        screen.wait_for_text("never-started")
        screen.keys("h")
        text = screen.wait_for_text("Keys here:")
        assert "sort by the next column" in text
        screen.keys("Escape")
        screen.wait_for_text("never-started")
    finally:
        workload.close()
    text = screen.wait_for_text("pid %d has exited" % workload.pid)
    assert text.startswith("gltop - processes that use greenlets")
    assert not re.search(r"^ *%d " % workload.pid, text, re.M)
    screen.keys("q")
    assert screen.exit_status() == 0


def test_a_missing_process_is_said_before_the_screen_opens(screens):
    pid = unused_pid()
    screen = screens("-p", pid)
    assert screen.exit_status() == 3
    assert "gltop: pid %d: " % pid in screen.text()


@pytest.fixture
def odd_segments():
    """Two processes whose segments gltop must refuse: one of layout
    version 2, one corrupt (FAKE_SEGMENT, from the inspect command's
    tests)."""
    fakes = {}
    for version, contents in ((2, "header"), (1, "garbage")):
        fake = subprocess.Popen(
            [sys.executable, "-c", FAKE_SEGMENT, str(version), contents],
            stdout=subprocess.PIPE, text=True)
        assert fake.stdout.readline() == "ready\n"
        fakes[contents] = fake
    yield {kind: fake.pid for kind, fake in fakes.items()}
    for fake in fakes.values():
        fake.kill()
        fake.wait()


def test_odd_segments_are_refused_with_a_message(odd_segments, screens):
    screen = screens("-d", "0.3")
    text = screen.wait_for(lambda t: all(
        re.search(r"^ *%d " % pid, t, re.M) for pid in odd_segments.values()))
    row = {kind: [line for line in text.split("\n")
                  if re.match(r" *%d " % pid, line)][0]
           for kind, pid in odd_segments.items()}
    assert "has another layout version" in row["header"]
    assert "corrupt or truncated" in row["garbage"]
    listed = [int(m) for m in re.findall(r"^ *(\d+) ", text, re.M)]
    screen.keys(*["Down"] * listed.index(odd_segments["garbage"]))
    screen.keys("Enter")  # stays on the picker, saying why
    text = screen.wait_for_text("pid %d: the monitor segment is corrupt"
                                % odd_segments["garbage"])
    assert text.startswith("gltop - processes that use greenlets")
    screen.keys("q")
    assert screen.exit_status() == 0
    for kind, status, message in (("header", 6, "another layout version"),
                                  ("garbage", 7, "corrupt")):
        direct = screens("-p", odd_segments[kind])
        assert direct.exit_status() == status
        assert message in direct.text()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_another_users_process_is_refused(plain, screens):
    nobody = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
              "--clear-groups"]
    screen = screens("-p", plain.pid, prefix=nobody)
    assert screen.exit_status() == 5
    assert "gltop: pid %d: permission denied" % plain.pid in screen.text()
    picker = screens("-d", "0.3", prefix=nobody)
    text = picker.wait_for_text("processes that use greenlets")
    assert not re.search(r"^ *%d " % plain.pid, text, re.M)
    picker.keys("q")
    assert picker.exit_status() == 0


def test_colours_where_the_terminal_has_them(plain, screens):
    screen = screens("-p", plain.pid, "-d", "0.3")
    screen.wait_for_text("never-started")
    coloured = screen.text(escapes=True).split("\n")
    escape = "\x1b["
    assert coloured[0].startswith(escape + "1m" + escape + "36mgltop - pid")
    assert coloured[3].startswith(escape + "30m" + escape + "42m")  # bar
    assert escape + "46mID^" in coloured[3]     # the sort column, on cyan
    assert coloured[4].startswith(escape + "46m")  # the selected row
    by_id = {int(re.sub(r"\x1b\[[0-9;]*m", "", line).split()[0]): line
             for line in coloured[4:12]}
    assert escape + "36mnew" + escape in by_id[7]
    assert escape + "34mdead" + escape in by_id[8]
    assert escape + "33mworker_with_child" in by_id[2]  # where: yellow


def test_refreshes_send_only_what_changed(plain, screens):
    """No flicker: after the first frame, a refresh never clears the
    screen, and sends only the cells that changed (here the ages that
    grow), not the whole screen again."""
    screen = screens("-p", plain.pid, "-d", "0.2")
    screen.wait_for_text("never-started")
    sent = screen.record(2.0)  # about ten refreshes
    assert b"\x1b[J" not in sent and b"\x1b[2J" not in sent  # no clear
    whole_screen = len(screen.text())
    assert 0 < len(sent) < whole_screen, len(sent)  # ten refreshes in less
                                                     # than one full screen
