"""This greenlet on each CPython it supports, side by side in one run.

Runs the shared micro-benchmarks (../shared/bench/gbench.py: switch,
spawn, throw, switches through 50 and 200 Python or C frames, memory per
suspended greenlet) with our package under each interpreter given,
alternating interpreters RUNS times, and prints each metric's median per
interpreter and its ratio to the first interpreter's (the reference,
Debian's 3.11 in make bench). There is no other greenlet for pyenv's
3.10, 3.12 and 3.13 here: against Debian's greenlet, the package is
compared on 3.11 (compare.sh).

    python3 bench/python_versions.py GBENCH PACKAGE_ROOT PYTHON [PYTHON...]
"""
import json
import os
import subprocess
import sys


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (
        values[middle - 1] + values[middle]) / 2.0


def version_of(python):
    return subprocess.run(
        [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True, text=True, check=True).stdout.strip()


def run_once(gbench, root, python):
    environment = dict(os.environ, PYTHONPATH=root)
    completed = subprocess.run([python, gbench, "--json"], capture_output=True,
                               text=True, env=environment, check=True)
    result = json.loads(completed.stdout)
    expected = os.path.join(os.path.abspath(root), "greenlet")
    if not result["greenlet_file"].startswith(expected):
        raise SystemExit("%s imported greenlet from %s, not from %s"
                         % (python, result["greenlet_file"], expected))
    return result["metrics"]


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__.strip().splitlines()[-1].strip())
    gbench, root, pythons = sys.argv[1], sys.argv[2], sys.argv[3:]
    runs = int(os.environ.get("RUNS", "3"))
    versions = [version_of(python) for python in pythons]
    results = {python: [] for python in pythons}
    for run in range(runs):
        for python, version in zip(pythons, versions):
            print("run %d/%d CPython %s" % (run + 1, runs, version),
                  file=sys.stderr)
            results[python].append(run_once(gbench, root, python))
    reference = pythons[0]
    print("%-32s" % "metric" + "".join("%12s" % v for v in versions)
          + "".join("%10s" % ("%s/%s" % (v.rsplit(".", 1)[0],
                                         versions[0].rsplit(".", 1)[0]))
                    for v in versions[1:]))
    for metric in results[reference][0]:
        medians = [median([r[metric] for r in results[python]])
                   for python in pythons]
        ratios = [m / medians[0] if medians[0] else float("nan")
                  for m in medians[1:]]
        print("%-32s" % metric + "".join("%12.1f" % m for m in medians)
              + "".join("%10.3f" % r for r in ratios))


if __name__ == "__main__":
    main()
