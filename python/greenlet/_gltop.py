"""The `gltop` command that pip installs (a console script): it runs the
gltop executable that setup.py builds into this package (from gltop/; its
manual is docs/gltop.1). It replaces this Python process with gltop
(os.execv, same arguments), so that the terminal, signals and the exit
status are gltop's own rather than passed through an interpreter."""
import os
import signal
import sys

EXECUTABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gltop")


def main():
    # Python starts with SIGPIPE and SIGXFSZ ignored, and an ignored signal
    # stays ignored across exec: give gltop the defaults a shell gives it,
    # so that `gltop -b ... | head` ends quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        os.execv(EXECUTABLE, sys.argv)
    except OSError as error:
        sys.stderr.write("gltop: cannot run %s: %s\n"
                         % (EXECUTABLE, error.strerror))
        return 1
