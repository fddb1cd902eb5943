#!/usr/bin/env python3
"""What writing the run history costs a no-change run (docs/PERFORMANCE.md).

Boots N hosts (default 30) with bench.py's fleet, converges them with the benchmark
scenario, then alternates no-change runs without and with `--history` (a SQLite file
that grows as it goes; with --postgres URL, also that database), and prints the median
wall time of each and the remote commands per host, which must be the same.

    benches/history-cost.py --converge target/release/converge \\
        --image target/converge-fleet/base --key target/converge-fleet/base.key

As root, like benches/run.sh. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("bench", HERE / "bench.py")
bench = importlib.util.module_from_spec(spec)
sys.modules["bench"] = bench
spec.loader.exec_module(bench)


def run(argv: list[str], env: dict[str, str]) -> tuple[float, dict] | None:
    started = time.monotonic()
    out = subprocess.run(argv, env=env, cwd=bench.REPO, capture_output=True, check=False)
    elapsed = time.monotonic() - started
    report = json.loads(out.stdout)
    if out.returncode != 0:
        failures = [
            f"{host['host']}: {task['task']}: {task.get('message')}"
            for play in report["plays"]
            for host in play["hosts"]
            for task in host["tasks"]
            if task["status"] in ("failed", "unreachable")
        ]
        print(f"run failed (exit {out.returncode}), not counted: " + "; ".join(failures[:3]))
        return None
    if report["summary"]["changed"] != 0:
        raise SystemExit(f"{argv}: expected no change, got {report['summary']}")
    return elapsed, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=10, help="runs of each kind")
    parser.add_argument("--converge", type=Path, required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--postgres", help="also measure --history with this URL")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="history-cost-"))
    try:
        return measure(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(args: argparse.Namespace, workdir: Path) -> int:
    with bench.Fleet(args.hosts, args.image, args.key, workdir) as fleet:
        inventory = bench.write_converge_inventory(fleet, fleet.dir / "inventory.yml")
        env = {"HOME": str(fleet.home), "PATH": "/usr/bin:/bin"}
        base = [str(args.converge), str(bench.SCENARIO["converge"]), "-i", str(inventory),
                "--format", "json"]  # fmt: skip
        first = subprocess.run(base, env=env, cwd=bench.REPO, capture_output=True)
        if first.returncode != 0:
            raise SystemExit(f"first converge failed:\n{first.stdout.decode()[-2000:]}")
        pg_port = urllib.parse.urlsplit(args.postgres).port or 5432 if args.postgres else 0
        kinds = {"none": [], "sqlite": ["--history", str(fleet.dir / "history.db")]}
        if args.postgres:
            kinds["postgres"] = ["--history", args.postgres]
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        commands: dict[str, set[int]] = {kind: set() for kind in kinds}
        order = list(kinds.items())
        for pair in range(args.pairs):
            # Each kind goes first, second and third equally often.
            for kind, extra in order[pair % len(order):] + order[: pair % len(order)]:
                for _attempt in range(3):
                    bench.wait_quiet(argparse.Namespace(quiet=0.85, quiet_wait=20.0))
                    result = run(base + extra, env)
                    if result:
                        break
                else:
                    raise SystemExit("three failed runs in a row")
                elapsed, report = result
                times[kind].append(elapsed)
                commands[kind].update(host["commands"] for host in report["hosts"])
        # The write itself: from the first to the last system call on the store (the
        # SQLite file and its -wal, or the socket to PostgreSQL), under strace, 5 runs.
        for kind, extra in kinds.items():
            if kind == "none":
                continue
            marker = "history.db" if kind == "sqlite" else f":{pg_port}]"
            spans = []
            for _ in range(5):
                trace = fleet.dir / f"trace-{kind}"
                calls = "openat,connect,read,write,pread64,pwrite64,fsync,fdatasync,sendto,recvfrom"
                argv = ["strace", "--seccomp-bpf", "-f", "-ttt", "-yy", "-e", f"trace={calls}",
                        "-o", str(trace)] + base + extra  # fmt: skip
                subprocess.run(argv, env=env, cwd=bench.REPO, capture_output=True)
                stamps = [
                    float(line.split()[1])
                    for line in trace.read_text().splitlines()
                    if marker in line
                ]
                if stamps:
                    spans.append((max(stamps) - min(stamps)) * 1000)
            if spans:
                print(f"{kind:8}  writing the history: median {statistics.median(spans):.1f} ms "
                      f"over {len(spans)} traced runs")  # fmt: skip
        baseline = statistics.median(times["none"])
        for kind in kinds:
            median = statistics.median(times[kind])
            print(
                f"{kind:8}  median {median:.3f} s  min {min(times[kind]):.3f} s  "
                f"({(median / baseline - 1) * 100:+.1f}%)  commands per host {sorted(commands[kind])}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
