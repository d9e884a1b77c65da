"""The command `python -m greenlet.inspect`.

    python -m greenlet.inspect                  processes that use greenlets
    python -m greenlet.inspect PID [--json] [--stacks]
    python -m greenlet.inspect audit PID [--json] [--watch]
    python -m greenlet.inspect run SCRIPT [ARGS...]

Without arguments, and with a PID, it reads the monitor segments that
processes publish (see docs/monitor.md): nothing is injected into the
process, which keeps running. `audit PID` asks the process to run the
hazard audit (greenlet.inspect.audit) and prints what it found. `run` runs
a script as the main program (like `python -m cProfile`) and prints a
report of its greenlets (greenlet.inspect.report) when it exits and each
time it gets SIGUSR1.
"""
import argparse
import atexit
import json
import os
import runpy
import signal
import sys

PROGRAM = "python -m greenlet.inspect"

EXAMPLES = """\
examples:
  python -m greenlet.inspect                 list processes that use greenlets
  python -m greenlet.inspect 4242            the greenlets of process 4242
  python -m greenlet.inspect 4242 --stacks   ... with Python and C stacks
  python -m greenlet.inspect 4242 --json     ... as JSON
  python -m greenlet.inspect audit 4242      its pointers into saved stacks
  python -m greenlet.inspect run server.py --port 8000
  kill -USR1 <pid of the run>                report now; the program goes on

exit status:
  0  success
  2  bad arguments
  3  no such process
  4  the process does not use greenlet (it publishes no monitor segment;
     GREENLET_MONITOR=0 in its environment turns publishing off)
  5  permission denied (the process belongs to another user)
  6  the process's monitor segment has another layout version (another
     greenlet release): inspect it with that release
  7  the segment is corrupt, or the process did not answer in time
  8  (audit) hazards found, or writes caught by watches
"""

# MonitorError codes -> exit status (see EXAMPLES).
EXIT_STATUS = {"GL_ENOPROCESS": 3, "GL_ENOMONITOR": 4, "GL_EPERM": 5,
               "GL_EVERSION": 6, "GL_ECORRUPT": 7, "GL_ETIMEDOUT": 7}

RUN_EXAMPLES = """\
examples:
  python -m greenlet.inspect run server.py --port 8000
  python -m greenlet.inspect run -o report.txt job.py
  kill -USR1 <pid>          # print the report now, the program goes on
"""


def parse_run(arguments):
    parser = argparse.ArgumentParser(
        prog=PROGRAM + " run",
        description="Runs SCRIPT with ARGS as the main program and prints "
                    "a report of its greenlets when it exits and on SIGUSR1: "
                    "greenlets alive, peak heap-held stack bytes, the tree, "
                    "and each greenlet's Python and C stacks.",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="append reports to FILE instead of standard "
                             "error")
    parser.add_argument("script", metavar="SCRIPT")
    parser.add_argument("arguments", metavar="ARGS", nargs=argparse.REMAINDER)
    return parser.parse_args(arguments)


def parse_audit(arguments):
    parser = argparse.ArgumentParser(
        prog=PROGRAM + " audit",
        description="Asks process PID to run the hazard audit: it looks for "
                    "words in the writable data of its loaded objects that "
                    "point into the saved stack of a suspended greenlet "
                    "(a C extension that kept a pointer to a stack buffer "
                    "across a switch), and answers with each holder "
                    "(object and symbol), the greenlet, the address and "
                    "the C frame it points into. The greenlets hit are "
                    "flagged H in gltop. Exit status 8 when it finds any.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pid", metavar="PID", type=int)
    parser.add_argument("--json", action="store_true",
                        help="print JSON instead of text")
    parser.add_argument("--watch", action="store_true",
                        help="also watch the addresses found for writes "
                             "(hardware watchpoints): later audits list "
                             "the writes caught, with the writer's "
                             "backtrace")
    parser.add_argument("--timeout", type=float, default=5.0,
                        metavar="SECONDS",
                        help="how long to wait for the answer (default: 5)")
    options = parser.parse_args(arguments)
    if options.pid <= 0:
        parser.error("PID must be a positive number")
    if options.timeout <= 0:
        parser.error("--timeout must be positive")
    return options


def audit_process(options):
    from ._monitor_view import MonitorError, audit_of, format_audit
    try:
        hits, writes, notes = audit_of(options.pid, options.timeout,
                                       options.watch)
    except MonitorError as error:
        return fail(error)
    if options.json:
        print(json.dumps({"pid": options.pid, "hazards": hits,
                          "writes": writes, "notes": notes}, indent=1))
    else:
        print(format_audit(options.pid, hits, notes, writes))
    return 8 if hits or writes else 0


def parse_watch(arguments):
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        usage="%(prog)s [PID [--json] [--stacks]] | audit PID | "
              "run SCRIPT [ARGS...]",
        description="Shows the greenlets of running processes. Without PID: "
                    "every process of this machine that uses greenlets and "
                    "whose segment you may read (pid, threads, greenlets "
                    "alive, heap-held stack bytes, command). With PID: that "
                    "process's greenlets, per thread, each under its parent, "
                    "with its state, heap-held bytes and where it is. "
                    "'run SCRIPT' runs a script and reports at exit "
                    "(see '%(prog)s run --help').",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pid", metavar="PID", type=int, nargs="?",
                        help="the process to show")
    parser.add_argument("--json", action="store_true",
                        help="print JSON instead of text")
    parser.add_argument("--stacks", action="store_true",
                        help="add each live greenlet's full Python stack and "
                             "native (C) stack, which the process computes "
                             "on request")
    parser.add_argument("--timeout", type=float, default=2.0,
                        metavar="SECONDS",
                        help="how long to wait for the process to publish "
                             "or answer (default: 2)")
    options = parser.parse_args(arguments)
    if options.pid is None and options.stacks:
        parser.error("--stacks needs a PID")
    if options.pid is not None and options.pid <= 0:
        parser.error("PID must be a positive number")
    if options.timeout <= 0:
        parser.error("--timeout must be positive")
    return options


def fail(error):
    sys.stderr.write("%s: %s\n" % (PROGRAM, error.args[1]))
    return EXIT_STATUS.get(error.args[0], 1)


def show_processes(options):
    from ._monitor_view import (MonitorError, format_listing, processes,
                                read_process)
    rows = []
    for pid in processes():
        try:
            rows.append((pid, read_process(pid, options.timeout)))
        except MonitorError as error:
            if error.args[0] != "GL_ENOPROCESS":  # gone since the scan
                rows.append((pid, error))
    if options.json:
        print(json.dumps([
            found if not isinstance(found, MonitorError)
            else {"pid": pid, "error": found.args[0]}
            for pid, found in rows], indent=1))
    else:
        print(format_listing(rows))
        if not rows:
            sys.stderr.write("%s: no process publishes a greenlet monitor "
                             "segment that you may read\n" % PROGRAM)
    return 0


def show_process(options):
    from ._monitor_view import (MonitorError, format_process, format_stacks,
                                read_process, stacks_of)
    try:
        snapshot = read_process(options.pid, options.timeout)
        stacks = None
        if options.stacks:
            stacks = stacks_of(options.pid,
                               [g["id"] for g in snapshot["greenlets"]
                                if g["state"] != "dead"], options.timeout)
    except MonitorError as error:
        return fail(error)
    if options.json:
        if stacks is not None:
            for record in snapshot["greenlets"]:
                record["stacks"] = stacks.get(record["id"])
        print(json.dumps(snapshot, indent=1))
        return 0
    print(format_process(snapshot))
    if stacks is not None:
        print()
        print(format_stacks(snapshot, stacks))
    return 0


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


def run_script(options):
    if not os.path.isfile(options.script):
        sys.stderr.write("%s: no such script: %s\n" % (PROGRAM,
                                                       options.script))
        return 2
    signal.signal(signal.SIGUSR1,
                  lambda number, frame: write_report(options.output,
                                                     "on SIGUSR1"))
    atexit.register(write_report, options.output, "at exit")
    sys.argv = [options.script] + options.arguments
    sys.path.insert(0, os.path.dirname(os.path.abspath(options.script)))
    runpy.run_path(options.script, run_name="__main__")
    return 0


def main(arguments=None):
    arguments = sys.argv[1:] if arguments is None else arguments
    if arguments[:1] == ["run"]:
        return run_script(parse_run(arguments[1:]))
    if arguments[:1] == ["audit"]:
        return audit_process(parse_audit(arguments[1:]))
    options = parse_watch(arguments)
    if options.pid is None:
        return show_processes(options)
    return show_process(options)
