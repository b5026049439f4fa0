"""Benchmark: plan N sources against the Sources API over HTTP (the test server, loopback).

    python bench/http_plan.py [--sources 1000] [--latency-ms 0,20]

For each latency (added by the server to every call, as a network would), prints the time of
reading the registry one record at a time and with the backend's bounded parallelism, then
the time of a whole `reconcile --dry-run` (manifests, reads, plan) in a fresh process.
The server runs in this process, so on plain loopback it competes with the client for the
GIL: there, parallel reads gain nothing; the latency rows show what they are for.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sources_api import SourcesApi

from reconciler.backends.base import ConnectOptions
from reconciler.backends.providers.sources_api import HttpRegistry

TOKEN = "bench-token"


def write_manifests(root: Path, count: int) -> None:
    root.mkdir()
    for i in range(count):
        (root / f"s{i:05d}.yaml").write_text(
            f"name: source_{i:05d}\nsource_type: postgres\ndescription: Source {i}.\n"
            f"connection: {{host: db{i % 7}.internal, dbname: shop, user: r, table: t{i},\n"
            "  password: '${env:BENCH_DB_PASSWORD}'}\ntags: [bench]\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--latency-ms", default="0,20")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp,
        SourcesApi.running(token=TOKEN) as api,
    ):
        work = Path(tmp)
        sources = work / "sources.d"
        write_manifests(sources, args.sources)
        state = f"sqlite:///{work / 'state.db'}"
        env = {
            **os.environ,
            "RECONCILER_TOKEN": TOKEN,
            "BENCH_DB_PASSWORD": "bench-secret",
            "NO_COLOR": "1",
        }
        cli = [sys.executable, "-m", "reconciler", "--registry", api.url, "--state", state]
        cli += ["--sources-dir", str(sources)]
        api.mask_secrets = True
        subprocess.run(cli, env=env, check=True, capture_output=True)  # registers them all
        print(f"{args.sources} sources, Sources API on {api.url}")
        print(f"{'latency':>8}  {'reads, 1 at a time':>19}  {'reads, parallel':>16}  {'plan':>7}")
        for latency in (float(ms) / 1000 for ms in args.latency_ms.split(",")):
            api.faults.clear()
            if latency:
                api.fail(delay=latency, times=10**9)
            reads = []
            for concurrency in (1, 16):
                registry = HttpRegistry(
                    api.url,
                    writable=False,
                    token=TOKEN,
                    options=ConnectOptions(state=state),
                    concurrency=concurrency,
                )
                started = time.monotonic()
                registry.list_records()
                reads.append(time.monotonic() - started)
                registry.close()
            started = time.monotonic()
            subprocess.run([*cli, "--dry-run"], env=env, check=True, capture_output=True)
            plan = time.monotonic() - started
            print(
                f"{latency * 1000:>6.0f}ms  {reads[0]:>18.2f}s  {reads[1]:>15.2f}s  {plan:>6.2f}s"
            )


if __name__ == "__main__":
    main()
