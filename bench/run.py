"""Benchmark: realistic manifests in a temp dir, each scenario a fresh `reconcile` process.

    python bench/run.py --sizes 1000,10000,100000 [--backends sqlite,postgres] [--repeat 3]

Prints one row per scenario: wall seconds of the whole process (startup included) and the
peak RSS of that process alone (os.wait4). Every run is cold as CI sees it: a new process,
and the reconciler keeps no cache of any kind between runs. Scenarios, per size and backend:

  validate           reconcile validate
  apply-empty        reconcile apply, registry empty: N creates
  noop-plan          reconcile --dry-run, everything in sync
  update-1pct-plan   reconcile --dry-run after 1 % of the manifests changed
  update-1pct-apply  reconcile apply of those changes
  prune-1pct         reconcile apply --prune after 1 % of the manifests were deleted

plus `reconcile --help` and `reconcile validate` of 10 files, and per size the floor: a fresh
Python process that only reads the N manifest files (what no plan can avoid). With
postgres, `teams`: owner A applies 20,000 sources while owner B applies 5 to the same
registry (B started once A holds its lock); the note says who finished first. 1M sources:
`--sizes 1000000 --backends postgres --scenarios noop-plan`. When `terraform` is on PATH,
the same run applies and plans 1,000 `terraform_data` resources (built in: nothing is
downloaded) and prints the per-resource ratio. PostgreSQL comes from RECONCILER_BENCH_PG,
else from a throwaway pgserver instance (the test dependency).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

SCENARIOS = (
    "validate",
    "apply-empty",
    "noop-plan",
    "update-1pct-plan",
    "update-1pct-apply",
    "prune-1pct",
)
READ_ONLY = {"validate", "noop-plan", "update-1pct-plan", "help", "validate-10", "floor"}
TEAM_A, TEAM_B = 20_000, 5
# The floor: a fresh interpreter that reads every manifest file and does nothing else.
FLOOR = (
    "import os, sys\n"
    "def walk(d):\n"
    "    for e in os.scandir(d):\n"
    "        if e.is_dir(): walk(e.path)\n"
    "        else:\n"
    "            with open(e.path, 'rb') as f: f.read()\n"
    "walk(sys.argv[1])\n"
)
TYPES = ("postgres", "csv")
TERRAFORM_N = 1000


@dataclass(frozen=True)
class Row:
    scenario: str
    n: int
    backend: str
    wall: float
    rss_mib: float
    note: str = ""


def write_manifests(root: Path, count: int, *, revision: int = 0, changed: float = 0.0) -> None:
    """One file per source, like a real sources.d: 7 to 11 lines of YAML each."""
    root.mkdir(parents=True, exist_ok=True)
    step = int(1 / changed) if changed else 0
    for i in range(count):
        rev = revision if step and i % step == 0 else 0
        if TYPES[i % 2] == "postgres":
            connection = (
                "connection:\n"
                f"  host: db{i % 17}.internal\n"
                "  port: 5432\n"
                f"  dbname: warehouse_{i % 5}\n"
                "  user: reporting\n"
                "  password: ${env:BENCH_DB_PASSWORD}\n"
                f"  table: table_{i}\n"
            )
        else:
            connection = f"connection:\n  file_path: /data/exports/file_{i}.csv\n"
        (root / f"source_{i:06d}.yaml").write_text(
            f"name: source_{i:06d}\n"
            f"source_type: {TYPES[i % 2]}\n"
            f"description: Source number {i}, revision {rev}.\n"
            f"{connection}"
            f"tags: [team-{i % 11}, tier-{i % 3}, bench]\n"
        )


def measure(
    command: list[str], env: dict[str, str], cwd: Path | None = None
) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MiB) of this process alone, exit code, end of stderr."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-2000:].decode("utf-8", "replace")
    return wall, usage.ru_maxrss / 1024, child.returncode, tail  # ru_maxrss is KiB on Linux


def reconcile(args: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    return measure([sys.executable, "-m", "reconciler", *args], env)


class Bench:
    def __init__(self, repeat: int) -> None:
        self.repeat = repeat
        self.rows: list[Row] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")},
            "BENCH_DB_PASSWORD": "bench-secret",
            "NO_COLOR": "1",
            "CI": "1",  # no progress bars
        }

    def record(self, scenario: str, n: int, backend: str, args: list[str]) -> None:
        runs = [
            reconcile(args, self.env) for _ in range(self.repeat if scenario in READ_ONLY else 1)
        ]
        wall = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        code = runs[-1][2]
        note = "" if code in (0, 2) else f"exit {code}"
        if note:
            print(runs[-1][3], file=sys.stderr)
        self.add(Row(scenario, n, backend, wall, rss, note))

    def add(self, row: Row) -> None:
        self.rows.append(row)
        note = f"  ({row.note})" if row.note else ""
        print(
            f"{row.scenario:<22} {row.n:>7} {row.backend:<15} {row.wall:8.3f} s "
            f"{row.rss_mib:8.1f} MiB{note}",
            flush=True,
        )

    def startup(self, tmp: Path) -> None:
        self.record("help", 0, "-", ["--help"])
        small = tmp / "small.d"
        write_manifests(small, 10)
        self.record("validate-10", 10, "-", ["validate", "--sources-dir", str(small)])

    def sources(
        self, size: int, backend: str, registry: str, tmp: Path, scenarios: tuple[str, ...]
    ) -> None:
        sources = tmp / f"sources-{size}-{backend}.d"
        write_manifests(sources, size)
        common = ["--registry", registry, "--sources-dir", str(sources)]
        self.floor(size, backend, sources)
        if "validate" in scenarios:
            self.record("validate", size, backend, ["validate", "--sources-dir", str(sources)])
        self.record("apply-empty", size, backend, ["apply", *common])
        if "noop-plan" in scenarios:
            self.record("noop-plan", size, backend, ["--dry-run", *common])
        write_manifests(sources, size, revision=1, changed=0.01)
        if "update-1pct-plan" in scenarios:
            self.record("update-1pct-plan", size, backend, ["--dry-run", *common])
        self.record("update-1pct-apply", size, backend, ["apply", *common])
        if "prune-1pct" in scenarios:
            gone = max(1, size // 100)
            for path in sorted(sources.iterdir())[:gone]:
                path.unlink()
            self.record(
                "prune-1pct",
                size,
                backend,
                ["apply", "--prune", "--max-deletes", str(gone), *common],
            )
        shutil.rmtree(sources)

    def floor(self, size: int, backend: str, sources: Path) -> None:
        runs = [
            measure([sys.executable, "-c", FLOOR, str(sources)], self.env)
            for _ in range(self.repeat)
        ]
        wall = statistics.median(r[0] for r in runs)
        self.add(Row("floor", size, backend, wall, max(r[1] for r in runs)))

    def teams(self, server_url: str, tmp: Path) -> None:
        """Owner B applies 5 sources while owner A applies 20,000 to the same registry."""
        import psycopg

        registry = fresh_database(server_url)
        a_dir, b_dir = tmp / "team-a.d", tmp / "team-b.d"
        write_manifests(a_dir, TEAM_A)
        write_manifests(b_dir, TEAM_B)
        for path in b_dir.iterdir():  # other names than team A's
            path.write_text(path.read_text().replace("name: source_", "name: team_b_source_"))
        reconcile(["registry", "init", "--registry", registry], self.env)

        def start(owner: str, sources: Path) -> tuple[subprocess.Popen[bytes], float]:
            args = ["apply", "--owner", owner, "--registry", registry, "--sources-dir"]
            command = [sys.executable, "-m", "reconciler", *args, str(sources)]
            started = time.perf_counter()
            return subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL), started

        a, a_start = start("team-a", a_dir)
        with psycopg.connect(registry, autocommit=True) as conn:
            while a.poll() is None:  # until A holds its owner lock (objsubid 2: two keys)
                held = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND objsubid = 2"
                ).fetchone()
                if held and held[0]:
                    break
                time.sleep(0.005)
        b, b_start = start("team-b", b_dir)
        _, b_status, b_usage = os.wait4(b.pid, 0)
        b_end = time.perf_counter()
        _, a_status, a_usage = os.wait4(a.pid, 0)
        a_end = time.perf_counter()
        a.returncode = os.waitstatus_to_exitcode(a_status)
        b.returncode = os.waitstatus_to_exitcode(b_status)
        first = "B finished first" if b_end < a_end else "A finished first"
        failed = a.returncode or b.returncode
        codes = f", exit codes {a.returncode}/{b.returncode}" if failed else ""
        a_rss, b_rss = a_usage.ru_maxrss / 1024, b_usage.ru_maxrss / 1024
        self.add(Row("teams: owner A", TEAM_A, "postgres", a_end - a_start, a_rss, first + codes))
        self.add(Row("teams: owner B", TEAM_B, "postgres", b_end - b_start, b_rss, first + codes))

    def terraform(self, tmp: Path) -> None:
        """1,000 terraform_data resources: apply from empty, then a no-op plan (with refresh)."""
        work = tmp / "terraform"
        work.mkdir()
        (work / "main.tf").write_text(
            'resource "terraform_data" "source" {\n'
            f"  count = {TERRAFORM_N}\n"
            '  input = { name = "source_${count.index}", path = "/data/${count.index}.csv" }\n'
            "}\n"
        )
        env = {**self.env, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
        env.pop("TF_CLI_CONFIG_FILE", None)
        tf = shutil.which("terraform") or "terraform"
        _, _, code, err = measure([tf, "init", "-input=false", "-no-color"], env, work)
        if code != 0:
            print(f"terraform init failed, skipping the comparison:\n{err}", file=sys.stderr)
            return
        for scenario, args in (
            ("apply-empty", ["apply", "-auto-approve", "-input=false", "-no-color"]),
            ("noop-plan", ["plan", "-input=false", "-no-color", "-detailed-exitcode"]),
        ):
            wall, rss, code, err = measure([tf, *args], env, work)
            note = "" if code == 0 else f"exit {code}"
            if note:
                print(err, file=sys.stderr)
            self.add(Row(f"terraform {scenario}", TERRAFORM_N, "terraform_data", wall, rss, note))


def postgres_url(keep: list[tuple[Any, str]]) -> str:
    url = os.environ.get("RECONCILER_BENCH_PG")
    if url:
        return url
    pgserver: Any = import_module("pgserver")  # the test dependency ships PostgreSQL

    data = tempfile.mkdtemp(prefix="reconciler-bench-pg-")
    server = pgserver.get_server(data, cleanup_mode="stop")
    keep.append((server, data))
    return str(server.get_uri())


def fresh_database(server_url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def ratios(rows: list[Row]) -> list[str]:
    """Per-resource time of terraform over ours, for each scenario both ran."""
    lines = []
    for scenario in ("noop-plan", "apply-empty"):
        theirs = [r for r in rows if r.scenario == f"terraform {scenario}" and not r.note]
        if not theirs:
            continue
        per_tf = theirs[0].wall / theirs[0].n
        for ours in (r for r in rows if r.scenario == scenario and not r.note):
            per_us = ours.wall / ours.n
            lines.append(
                f"| {scenario} | {ours.n:,} | {ours.backend} | {per_us * 1e6:,.0f} µs "
                f"| {per_tf * 1e6:,.0f} µs | {per_tf / per_us:,.0f}× |"
            )
    if lines:
        lines[:0] = [
            "| scenario | N | backend | reconciler per resource | terraform per resource "
            f"({TERRAFORM_N:,} terraform_data) | ratio |",
            "|---|---:|---|---:|---:|---:|",
        ]
    return lines


def beside_floor(rows: list[Row]) -> list[str]:
    """Each no-op plan beside the floor of the same size: how far from free it is."""
    floors = {(r.n, r.backend): r.wall for r in rows if r.scenario == "floor"}
    lines = [
        f"| {r.n:,} | {r.backend} | {r.wall:.3f} | {floors[(r.n, r.backend)]:.3f} |"
        for r in rows
        if r.scenario == "noop-plan" and (r.n, r.backend) in floors
    ]
    if lines:
        lines[:0] = [
            "| N | backend | no-op plan (s) | floor: start Python, read the files (s) |",
            "|---:|---|---:|---:|",
        ]
    return lines


def table(rows: list[Row]) -> list[str]:
    out = ["| scenario | N | backend | wall (s) | peak RSS (MiB) |", "|---|---:|---|---:|---:|"]
    for r in rows:
        note = f" ({r.note})" if r.note else ""
        out.append(
            f"| {r.scenario}{note} | {r.n:,} | {r.backend} | {r.wall:.3f} | {r.rss_mib:.0f} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated source counts")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--scenarios", default=",".join((*SCENARIOS, "teams")))
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of read-only scenarios (median)"
    )
    parser.add_argument("--no-terraform", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    scenarios = tuple(args.scenarios.split(","))
    load = os.getloadavg()
    print(
        f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} at start",
        flush=True,
    )
    print(f"{'scenario':<22} {'N':>7} {'backend':<15} {'wall':>10} {'peak RSS':>12}", flush=True)
    keep: list[tuple[Any, str]] = []
    bench = Bench(max(1, args.repeat))
    try:
        run(bench, sizes, backends, scenarios, keep, terraform=not args.no_terraform)
    finally:
        for server, data in keep:  # the throwaway PostgreSQL server, even after Ctrl-C
            server.cleanup()
            shutil.rmtree(data, ignore_errors=True)
    print(f"\n# load average {os.getloadavg()[0]:.2f} at the end\n")
    print("\n".join(table(bench.rows)))
    floor = beside_floor(bench.rows)
    if floor:
        print("\n" + "\n".join(floor))
    comparison = ratios(bench.rows)
    if comparison:
        print("\n" + "\n".join(comparison))


def run(
    bench: Bench,
    sizes: list[int],
    backends: list[str],
    scenarios: tuple[str, ...],
    keep: list[tuple[Any, str]],
    *,
    terraform: bool,
) -> None:
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        work = Path(tmp)
        bench.startup(work)
        pg = postgres_url(keep) if "postgres" in backends else None
        for size in sizes:
            for backend in backends:
                registry = (
                    f"sqlite:///{work / f'registry-{size}.db'}"
                    if backend == "sqlite"
                    else fresh_database(pg or "")
                )
                bench.sources(size, backend, registry, work, scenarios)
        if pg is not None and "teams" in scenarios:
            bench.teams(pg, work)
        if shutil.which("terraform") and terraform:
            bench.terraform(work)


if __name__ == "__main__":
    main()
