"""The package installs with pip (Debian's setuptools, no package index) and
the installed copy works: the README's install command, run in a virtual
environment that sees the system's packages."""
import os
import subprocess
import sys

from package_under_test import REPOSITORY


def test_pip_installs_a_working_package(tmp_path):
    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                    str(environment)], check=True, timeout=120)
    python = str(environment / "bin" / "python")
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-build-isolation",
         "--no-index", REPOSITORY],
        capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    check = subprocess.run(
        [python, "-c",
         "import greenlet, os\n"
         "main = greenlet.getcurrent()\n"
         "g = greenlet.greenlet(lambda x: main.switch(x * 2))\n"
         "assert g.switch(21) == 42\n"
         "print(greenlet.__file__)\n"
         "print(sorted(os.listdir(os.path.dirname(greenlet.__file__))))\n"],
        capture_output=True, text=True, timeout=60, cwd=str(tmp_path),
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert check.returncode == 0, check.stderr
    location, files = check.stdout.splitlines()
    assert location.startswith(str(environment))
    assert "greenlet.h" in files
