"""Runs upstream greenlet's own test suite, unchanged, against this package.

Debian's python3-greenlet ships upstream 2.0.2's suite (its tests, the
helpers TestCase and leakcheck, and the C sources of its two test
extensions) in /usr/lib/python3/dist-packages/greenlet/tests. This script
copies it into a temporary package, `upstream_tests`, so that its
`from greenlet import ...` finds the package under test (--package-root)
while its relative imports find the copy's own helpers; nothing in it is
edited. The shipped test extensions are compiled for Debian's 3.11: for
another interpreter they are built from their sources against our
greenlet.h (the C++ one also includes greenlet_compiler_compat.hpp, a
header of compiler macros that Debian ships beside the suite).

Each test file runs in a process of its own (a crash fails that file
only), with unittest. A test that upstream marks as expected to leak
(@fails_leakcheck) and that does not leak with our package fails in
leakcheck with "Expected ... to leak but it did not."; that is counted as
passing. A child process prints one result line that this script reads;
it prints a table of passed, failed and skipped tests per file and exits
1 if any test failed or any file did not finish.

    python tests/upstream_suite.py --package-root python [--only test_gc]

The interpreter that runs this script is the one tested. objgraph (which
leakcheck imports) must be importable; psutil, for the one call the suite
makes (Process().memory_full_info().uss), is replaced by a stand-in that
reads /proc/self/smaps_rollup when the interpreter has none.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

UPSTREAM = "/usr/lib/python3/dist-packages/greenlet"

# Tests of the 2.0.2 suite that no package can pass on some CPython,
# because they use what that version removed (upstream's later suites
# changed them). Each must fail with exactly the error given, or it counts
# as a failure; it is reported on its own line, not as passed.
INTERPRETER_INCOMPATIBLE = {
    (3, 13): {
        "upstream_tests.test_greenlet.TestGreenlet."
        "test_throw_to_dead_thread_doesnt_crash": (
            "AttributeError",
            "'FrameLocalsProxy' object has no attribute 'clear'",
            "frame.f_locals is a proxy without clear() from 3.13 (PEP 667)"),
    },
}
PACKAGE = "upstream_tests"
RESULT_MARK = "UPSTREAM-SUITE-RESULT "
NOT_LEAKING = "to leak but it did not."
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PSUTIL_STANDIN = '''"""A stand-in for psutil, for the one call upstream's test_leaks makes:
Process().memory_full_info().uss, the memory unique to this process."""
import collections

_FullInfo = collections.namedtuple("_FullInfo", "uss")


class Process:
    def memory_full_info(self):
        private = 0
        with open("/proc/self/smaps_rollup") as rollup:
            for line in rollup:
                key, _, rest = line.partition(":")
                if key in ("Private_Clean", "Private_Dirty"):
                    private += int(rest.split()[0]) * 1024
        return _FullInfo(private)
'''


# ------------------------------------------------------------------ child

def run_child(module_name, package_root):
    """Runs one test module; prints the result line. Exit status 0."""
    import unittest
    import greenlet
    imported = os.path.dirname(os.path.dirname(
        os.path.abspath(greenlet.__file__)))
    if imported != os.path.abspath(package_root):
        raise SystemExit("upstream_suite: imported greenlet from %s, not %s"
                         % (greenlet.__file__, package_root))

    class Result(unittest.TextTestResult):
        # Counted here: testsRun leaves skipped tests out from 3.12 on.
        passed = 0
        did_not_leak = 0

        incompatible = []

        def addSuccess(self, test):
            self.passed += 1
            super().addSuccess(test)

        def addError(self, test, error):
            known = INTERPRETER_INCOMPATIBLE.get(sys.version_info[:2], {})
            expected = known.get(test.id())
            kind, value, _ = error
            if expected and (kind.__name__, str(value)) == expected[:2]:
                self.incompatible.append("%s: %s" % (test.id(), expected[2]))
                self.stream.writeln("    (uses what this CPython removed: "
                                    "%s)" % expected[2])
                return
            super().addError(test, error)

        def _expected_leak_that_did_not(self, error):
            kind, value, _ = error
            return (kind.__name__ == "LeakCheckError"
                    and str(value).startswith("Expected ")
                    and str(value).endswith(NOT_LEAKING))

        def addFailure(self, test, error):
            if self._expected_leak_that_did_not(error):
                self.did_not_leak += 1
                self.addSuccess(test)
                self.stream.writeln("    (marked as leaking upstream; "
                                    "does not leak here: passes)")
                return
            super().addFailure(test, error)

    module = __import__(module_name, fromlist=["*"])
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2,
                                     resultclass=Result)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(
        result.unexpectedSuccesses)
    skipped = len(result.skipped) + len(result.expectedFailures)
    summary = {"passed": result.passed, "failed": failed, "skipped": skipped,
               "did_not_leak": result.did_not_leak,
               "incompatible": result.incompatible,
               "failures": [test.id() for test, _ in
                            result.failures + result.errors]}
    sys.stdout.write(RESULT_MARK + json.dumps(summary) + "\n")
    sys.stdout.flush()


# ----------------------------------------------------------------- parent

def extension_sources(suite):
    """{module name: source} of the suite's test extensions."""
    return {os.path.splitext(os.path.basename(path))[0]: path
            for path in glob.glob(os.path.join(suite, "_test_extension*.c*"))}


def build_extension(source, work, target):
    """Compiles one test extension for this interpreter against our
    greenlet.h (placed at work/greenlet.h, which the sources include as
    ../greenlet.h). Raises SystemExit with the compiler's output."""
    cplusplus = source.endswith(".cpp")
    compiler = os.environ.get("CXX" if cplusplus else "CC",
                              "g++" if cplusplus else "cc")
    command = [compiler, "-shared", "-fPIC", "-O1", "-g",
               "-I" + sysconfig.get_paths()["include"], "-I" + work,
               "-o", target, source]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode != 0:
        raise SystemExit("upstream_suite: cannot build %s:\n%s\n%s"
                         % (source, " ".join(command), built.stderr))


def prepare(work, package_root, upstream):
    """Copies the suite into work/upstream_tests and makes sure each test
    extension is there for this interpreter. Returns the folders to put
    first on the children's PYTHONPATH."""
    suite = os.path.join(upstream, "tests")
    if not os.path.isdir(suite):
        raise SystemExit("upstream_suite: no suite in %s (Debian's "
                         "python3-greenlet installs it)" % suite)
    copy = os.path.join(work, PACKAGE)
    shutil.copytree(suite, copy, ignore=shutil.ignore_patterns(
        "__pycache__", "*.so"))
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    shutil.copy(os.path.join(package_root, "greenlet", "greenlet.h"), work)
    shutil.copy(os.path.join(upstream, "greenlet_compiler_compat.hpp"), work)
    for name, source in sorted(extension_sources(copy).items()):
        shipped = os.path.join(suite, name + suffix)
        target = os.path.join(copy, name + suffix)
        if os.path.exists(shipped):
            shutil.copy(shipped, target)   # built against upstream's header
        else:
            build_extension(source, work, target)
    path = [work, os.path.abspath(package_root)]
    probe = subprocess.run([sys.executable, "-c", "import psutil"],
                           capture_output=True)
    if probe.returncode != 0:
        standins = os.path.join(work, "standins")
        os.mkdir(standins)
        with open(os.path.join(standins, "psutil.py"), "w") as out:
            out.write(PSUTIL_STANDIN)
        path.append(standins)
    return path


def run_file(module, path, timeout):
    """Runs one test module in a child. Returns (summary or None, output)."""
    environment = dict(os.environ)
    inherited = [os.path.abspath(p) for p in
                 environment.get("PYTHONPATH", "").split(os.pathsep) if p]
    environment["PYTHONPATH"] = os.pathsep.join(path + inherited)
    command = [sys.executable, os.path.abspath(__file__), "--child",
               PACKAGE + "." + module, "--package-root", path[1]]
    try:
        child = subprocess.run(command, capture_output=True, text=True,
                               timeout=timeout, env=environment,
                               cwd=path[0])
    except subprocess.TimeoutExpired as expired:
        output = (expired.stderr or b"")
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        return None, output + "\n(timed out after %d s)" % timeout
    summary = None
    for line in child.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            summary = json.loads(line[len(RESULT_MARK):])
    output = child.stdout + child.stderr
    if child.returncode != 0:
        output += "\n(exit status %d)" % child.returncode
        summary = None
    return summary, output


def main():
    parser = argparse.ArgumentParser(
        description="Runs upstream greenlet's test suite (Debian's "
        "python3-greenlet) unchanged against a greenlet package.")
    parser.add_argument("--package-root", default=os.path.join(
        REPOSITORY, "python"), help="the folder that holds the greenlet "
        "package under test (default: this repository's python/)")
    parser.add_argument("--upstream", default=UPSTREAM,
                        help="upstream's package, with its tests/ "
                        "(default: %(default)s)")
    parser.add_argument("--only", nargs="*", metavar="TEST_FILE",
                        help="run these files only (test_gc, ...)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds per file (default: %(default)s)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary copy and say where")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        run_child(arguments.child, arguments.package_root)
        return 0

    work = tempfile.mkdtemp(prefix="greenlet-upstream-suite-")
    try:
        path = prepare(work, arguments.package_root, arguments.upstream)
        modules = sorted(os.path.splitext(os.path.basename(p))[0] for p in
                         glob.glob(os.path.join(work, PACKAGE, "test_*.py")))
        if arguments.only:
            unknown = set(arguments.only) - set(modules)
            if unknown:
                parser.error("no such test file: %s" % ", ".join(sorted(
                    unknown)))
            modules = [m for m in modules if m in arguments.only]
        return report(modules, path, arguments.timeout)
    finally:
        if arguments.keep:
            print("upstream_suite: the copy is in %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(modules, path, timeout):
    """Runs the modules, prints the table; 0 when all passed, else 1."""
    print("upstream greenlet's suite (%s) on %s %s" % (
        UPSTREAM, sys.implementation.name, sys.version.split()[0]))
    totals = {"passed": 0, "failed": 0, "skipped": 0, "did_not_leak": 0}
    incompatible = []
    unfinished, failing = [], []
    for module in modules:
        started = time.monotonic()
        summary, output = run_file(module, path, timeout)
        seconds = time.monotonic() - started
        if summary is None:
            unfinished.append(module)
            print("%-28s did not finish (%.1f s)" % (module, seconds))
            print("    " + "\n    ".join(output.strip().splitlines()[-40:]))
            continue
        passed = summary["passed"]
        totals["passed"] += passed
        totals["failed"] += summary["failed"]
        totals["skipped"] += summary["skipped"]
        totals["did_not_leak"] += summary["did_not_leak"]
        incompatible += summary["incompatible"]
        notes = []
        if summary["did_not_leak"]:
            notes.append("%d marked as leaking upstream, not leaking"
                         % summary["did_not_leak"])
        if summary["incompatible"]:
            notes.append("%d cannot pass on this CPython"
                         % len(summary["incompatible"]))
        note = " (%s)" % "; ".join(notes) if notes else ""
        print("%-28s %3d passed %3d failed %3d skipped  %5.1f s%s" % (
            module, passed, summary["failed"], summary["skipped"], seconds,
            note))
        if summary["failed"]:
            failing.append(module)
            print("    " + "\n    ".join(output.strip().splitlines()[-60:]))
    for test in incompatible:
        print("cannot pass on this CPython, as expected: " + test)
    print("total: %(passed)d passed, %(failed)d failed, %(skipped)d skipped"
          % totals + (", %d marked as leaking upstream do not leak"
                      % totals["did_not_leak"] if totals["did_not_leak"]
                      else "")
          + ("; did not finish: %s" % ", ".join(unfinished)
             if unfinished else ""))
    return 1 if unfinished or failing else 0


if __name__ == "__main__":
    sys.exit(main())
