"""The test suite's cost: every test's time (setup, call and teardown), summed per file, beside the machine's speed.

Runs the suite of a checkout (default: this one) with pytest's ``--durations=0`` and a JUnit XML report, and
writes one text file with

  - the fp32 matmul rate (benchmarks/attribution.py's 2048x2048 peak, all cores) just before and just after
    the run, so that files taken on different days (this machine's speed varies up to 5x between days) can
    be compared;
  - pytest's closing line and the run's wall time;
  - the summed test time, and the same sum per test file, largest first;
  - pytest's own ``--durations=0`` table (every phase of every test over 5 ms).

The summed test time is the sum of the JUnit ``time`` of every test: setup + call + teardown, so a
module- or session-scoped fixture counts once, in the first test that asks for it.  Collection and
interpreter start are outside it (they are in the wall time).

    python benchmarks/suite.py --out results/benchmarks/suite-after.txt
    python benchmarks/suite.py --repo ../base --out results/benchmarks/suite-before.txt   # another checkout

``--repo`` runs another checkout's tests against that checkout's own ``src`` (put first on PYTHONPATH,
ahead of this environment's editable install), with this environment's packages.  Extra arguments go to
pytest.  Nothing else heavy should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from attribution import _in_child, matmul_gflops  # noqa: E402  (this folder's benchmark: the same peak rate)


def per_test_seconds(junit: Path) -> dict[str, float]:
    """JUnit's testcases as ``file::name`` -> seconds (setup + call + teardown)."""
    times: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")
        # classname is tests.test_x or tests.test_x.Class: the file is the first test_* part
        file = next((f"{p}.py" for p in module if p.startswith("test_")), case.get("classname", "?"))
        times[f"{file}::{case.get('name')}"] += float(case.get("time", 0))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--out", type=Path, required=True)
    args, pytest_args = ap.parse_known_args()
    repo = args.repo.resolve()
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo / "src"), os.environ.get("PYTHONPATH")]))}

    before = _in_child(matmul_gflops)  # a fresh process, as a test would see the machine
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        started = datetime.datetime.now().astimezone()
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "--durations=0", "-p", "no:cacheprovider",
                               f"--junitxml={junit}", *pytest_args], cwd=repo, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        times = per_test_seconds(junit)
    after = _in_child(matmul_gflops)

    out = proc.stdout
    closing = out.strip().splitlines()[-1] if out.strip() else "(no output)"
    head = out.find("slowest durations")  # the table starts on the line after its header
    durations = out[out.find("\n", head) + 1:] if head >= 0 else "(pytest printed no durations)\n"
    files: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for name, s in times.items():
        files[name.split("::")[0]] += s
        counts[name.split("::")[0]] += 1
    total = sum(times.values())

    lines = [
        f"# Test suite cost: {repo.name} at {commit}{' (with uncommitted changes)' if dirty else ''}",
        f"started {started:%Y-%m-%d %H:%M %Z}; python -m pytest --durations=0 {' '.join(pytest_args)}".rstrip(),
        f"fp32 matmul (2048x2048, {os.cpu_count()} cores): {before:.1f} GFLOP/s before the run, "
        f"{after:.1f} after",
        f"pytest: {closing} (exit {proc.returncode}); wall {wall:.0f} s",
        f"summed test time (setup + call + teardown of {len(times)} tests): {total:.1f} s",
        "",
        "## Per file (seconds, tests)",
        *(f"{s:9.1f}  {counts[f]:4d}  {f}" for f, s in sorted(files.items(), key=lambda kv: -kv[1])),
        "",
        "## Per test, 30 slowest (seconds)",
        *(f"{s:9.1f}  {n}" for n, s in sorted(times.items(), key=lambda kv: -kv[1])[:30]),
        "",
        "## pytest --durations=0",
        durations.rstrip(),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines[:5]))
    if proc.returncode:
        print(out[-4000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
