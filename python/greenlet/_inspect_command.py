"""The command `python -m greenlet.inspect`.

    python -m greenlet.inspect run SCRIPT [ARGS...]

runs SCRIPT as the main program (like `python -m cProfile`) and prints a
report of its greenlets (greenlet.inspect.report) when it exits and each
time the process gets SIGUSR1. Watching other processes (a PID argument,
or none to list them) needs the monitor segment, which is not built yet.
"""
import argparse
import atexit
import os
import runpy
import signal
import sys

EXAMPLES = """\
examples:
  python -m greenlet.inspect run server.py --port 8000
  kill -USR1 <pid>          # print the report now, the program goes on
  python -m greenlet.inspect run -o report.txt job.py
"""


def parse(arguments):
    parser = argparse.ArgumentParser(
        prog="python -m greenlet.inspect",
        description="Reports on the greenlets of a Python program.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    run = commands.add_parser(
        "run", help="run a script; report at exit and on SIGUSR1",
        description="Runs SCRIPT with ARGS as the main program and prints "
                    "a report of its greenlets when it exits and on SIGUSR1.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("-o", "--output", metavar="FILE",
                     help="append reports to FILE instead of standard error")
    run.add_argument("script", metavar="SCRIPT")
    run.add_argument("arguments", metavar="ARGS", nargs=argparse.REMAINDER)
    return parser.parse_args(arguments)


def write_report(output, reason):
    from greenlet import inspect
    text = "=== greenlet report (pid %d, %s)\n%s\n" % (
        os.getpid(), reason, inspect.report())
    if output:
        with open(output, "a") as stream:
            stream.write(text)
    else:
        sys.stderr.write(text)
        sys.stderr.flush()


def main(arguments=None):
    options = parse(sys.argv[1:] if arguments is None else arguments)
    if not os.path.isfile(options.script):
        sys.stderr.write("python -m greenlet.inspect: no such script: %s\n"
                         % options.script)
        return 2
    signal.signal(signal.SIGUSR1,
                  lambda number, frame: write_report(options.output,
                                                     "on SIGUSR1"))
    atexit.register(write_report, options.output, "at exit")
    sys.argv = [options.script] + options.arguments
    sys.path.insert(0, os.path.dirname(os.path.abspath(options.script)))
    runpy.run_path(options.script, run_name="__main__")
    return 0
