"""The code standards, enforced by the test run CI makes: ruff's lint and format, and mypy
--strict over ``proxy``, ``auth`` and ``tests``. A finding fails the test with the tool's output.

mypy keeps its cache in ``.mypy_cache`` at the checkout's root, so only the first run (a fresh
CI machine) checks everything (about 15 s on two cores); later runs re-check what changed
(about 2 s).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("proxy", "auth", "tests")

COMMANDS = {
    "ruff check": ["ruff", "check", "."],
    "ruff format": ["ruff", "format", "--check", *CHECKED],
    "mypy --strict": ["mypy", "--strict", *CHECKED],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_clean(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *COMMANDS[name]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
