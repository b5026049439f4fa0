"""Two runs never interleave, and a run killed at any point loses nothing (real processes)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import sql_rows

from reconciler.backends import open_registry


def write_manifests(root: Path, count: int, description: str) -> None:
    root.mkdir(exist_ok=True)
    for i in range(count):
        (root / f"s{i:04d}.yaml").write_text(
            f"name: source_{i:04d}\nsource_type: csv\ndescription: {description}\n"
            f"connection: {{file_path: /data/{i}.csv}}\ntags: [bench, t{i % 7}]\n"
        )


def cli(*args: str, registry: str, sources: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            *args,
            "--registry",
            registry,
            "--sources-dir",
            str(sources),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_second_run_waits_then_fails_naming_the_holder(registry_url: str, tmp_path: Path) -> None:
    sources = tmp_path / "sources.d"
    write_manifests(sources, 3, "x")
    registry = open_registry(registry_url, writable=True)
    registry.init()
    with registry.locked():
        code, _, err = finish(cli("--lock-timeout", "1", registry=registry_url, sources=sources))
    registry.close()
    assert code == 1
    assert "is locked by" in err and f"pid {os.getpid()} since " in err
    assert "gave up after 1 s (--lock-timeout). Nothing was written." in err
    assert sql_rows(registry_url, "SELECT count(*) FROM sources") == [(0,)]


def test_two_concurrent_applies_serialise(registry_url: str, tmp_path: Path) -> None:
    sources = tmp_path / "sources.d"
    write_manifests(sources, 300, "concurrent")
    first = cli(registry=registry_url, sources=sources)
    second = cli(registry=registry_url, sources=sources)
    results = [finish(first), finish(second)]
    assert [r[0] for r in results] == [0, 0], results
    assert sql_rows(registry_url, "SELECT count(*) FROM sources") == [(300,)]
    created = sorted(r[0] for r in sql_rows(registry_url, "SELECT created FROM runs"))
    assert created == [0, 300]  # one created everything, the other found nothing to do


def test_sigkill_at_random_points_loses_nothing(registry_url: str, tmp_path: Path) -> None:
    sources = tmp_path / "sources.d"
    rng = random.Random(1234)
    total = 1000
    for round_ in range(4):
        write_manifests(sources, total, f"round {round_}")
        victim = cli(registry=registry_url, sources=sources)
        time.sleep(rng.uniform(0.3, 2.0))
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
        code, out, err = finish(cli(registry=registry_url, sources=sources))
        assert code == 0, err
        code, out, err = finish(
            cli("--dry-run", "--detailed-exitcode", registry=registry_url, sources=sources)
        )
        assert code == 0, out
        assert f"({total} sources in sync)" in out
        rows = sql_rows(registry_url, "SELECT count(*), count(DISTINCT lower(name)) FROM sources")
        assert rows == [(total, total)]
        descriptions = {r[0] for r in sql_rows(registry_url, "SELECT description FROM sources")}
        assert descriptions == {f"round {round_}"}
