"""The package installs with pip (Debian's setuptools, no package index) and
the installed copy works: the README's install command, run in a virtual
environment that sees the system's packages. gltop comes with it: a
`gltop` command on the environment's PATH, and its man page."""
import os
import subprocess
import sys

import pytest

from package_under_test import REPOSITORY
from test_monitor_command import unused_pid


def test_pip_installs_a_working_package(tmp_path):
    try:
        import setuptools  # noqa: F401  (pip uses the interpreter's own)
    except ImportError:
        pytest.skip("no setuptools for %s: only Debian's python3 has it here"
                    % sys.executable)
    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                    str(environment)], check=True, timeout=120)
    python = str(environment / "bin" / "python")
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-build-isolation",
         "--no-index", REPOSITORY],
        capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    # The installed copy, not this repository's python/ (the tests' own).
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run(
        [python, "-c",
         "import greenlet, os\n"
         "main = greenlet.getcurrent()\n"
         "g = greenlet.greenlet(lambda x: main.switch(x * 2))\n"
         "assert g.switch(21) == 42\n"
         "print(greenlet.__file__)\n"
         "print(sorted(os.listdir(os.path.dirname(greenlet.__file__))))\n"],
        capture_output=True, text=True, timeout=60, cwd=str(tmp_path),
        env=environ)
    assert check.returncode == 0, check.stderr
    location, files = check.stdout.splitlines()
    assert location.startswith(str(environment))
    assert "greenlet.h" in files
    packaged = os.path.join(os.path.dirname(location), "gltop")
    assert os.access(packaged, os.X_OK), packaged
    gltop = str(environment / "bin" / "gltop")
    helped = subprocess.run([gltop, "--help"], capture_output=True,
                            text=True, timeout=60, env=environ)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: gltop ")
    missing = subprocess.run([gltop, "-b", "-p", str(unused_pid())],
                             capture_output=True, text=True, timeout=60,
                             env=environ)
    assert missing.returncode == 3, missing.stderr   # no such process
    assert (environment / "share" / "man" / "man1" / "gltop.1").is_file()
