"""`python -m reconciler` from the repository root, where the checkout's `reconciler/`
shadows the installed package: the JSON Schemas are still found.

Installed (wheel or editable), `reconciler.schemas` is mapped from the top-level `schemas/`
by pyproject; the checkout itself has no `reconciler/schemas/`. The subprocess runs without
`site` (so no editable-install finder), with the dependencies on PYTHONPATH and the checkout
first on sys.path: exactly what a non-editable `pip install .` gives from the repository root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_python_dash_m_from_the_repository_root(sources: Path) -> None:
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"], "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-S", "-m", "reconciler", "validate", "--sources-dir", str(sources)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3 sources in 3 files: all valid.\n"
    assert "Traceback" not in done.stderr
