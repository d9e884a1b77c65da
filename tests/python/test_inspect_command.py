"""`python -m greenlet.inspect run SCRIPT`: the report at SIGUSR1 and at
exit, checked against what the script is known to hold; and its errors."""
import os
import subprocess
import sys
import textwrap

from package_under_test import PACKAGE_ROOT

WORKLOAD = textwrap.dedent("""
    import os, signal
    from greenlet import getcurrent, greenlet, inspect

    main = getcurrent()

    def parked_in_deeper():
        main.switch()

    def worker():
        parked_in_deeper()

    workers = [greenlet(worker) for _ in range(3)]
    for w in workers:
        w.switch()
    inspect.set_name(workers[0], "first-worker")
    os.kill(os.getpid(), signal.SIGUSR1)
    workers[1].switch()          # one finishes before exit
    print("script output")
""")


def run_command(*arguments, cwd):
    return subprocess.run(
        [sys.executable, "-m", "greenlet.inspect"] + list(arguments),
        capture_output=True, text=True, timeout=120, cwd=cwd,
        env=dict(os.environ, PYTHONPATH=PACKAGE_ROOT))


def test_reports_at_sigusr1_and_at_exit(tmp_path):
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    completed = run_command("run", str(script), cwd=str(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "script output\n"
    on_signal, at_exit = completed.stderr.split("=== greenlet report")[1:]
    assert "on SIGUSR1" in on_signal and "at exit" in at_exit
    assert "greenlets alive: 4 (running 1, suspended 3)" in on_signal
    assert "greenlets alive: 3 (running 1, suspended 2, dead 1)" in at_exit
    assert on_signal.count("at parked_in_deeper (") == 3
    assert "first-worker" in on_signal
    assert "[native] gl__greenlet_trampoline" in on_signal
    assert "_inspect_command.py" not in on_signal


def test_output_file_help_and_errors(tmp_path):
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    report = tmp_path / "report.txt"
    completed = run_command("run", "-o", str(report), str(script),
                            cwd=str(tmp_path))
    assert completed.returncode == 0 and completed.stderr == ""
    assert report.read_text().count("=== greenlet report") == 2

    helped = run_command("run", "--help", cwd=str(tmp_path))
    assert helped.returncode == 0 and "examples:" in helped.stdout

    missing = run_command("run", "no-such-script.py", cwd=str(tmp_path))
    assert missing.returncode == 2
    assert "no such script" in missing.stderr

    # Without arguments it lists processes (test_monitor_command.py).
    bare = run_command(cwd=str(tmp_path))
    assert bare.returncode == 0 and bare.stdout.split()[:2] == ["PID",
                                                               "THREADS"]
