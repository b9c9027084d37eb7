"""Integration fixtures: the real ``answerdesk`` command in a subprocess, against a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ANSWERDESK = str(Path(sys.executable).with_name("answerdesk"))


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Runner = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path) -> Runner:
    """Run ``answerdesk ARGS`` with the store in ``tmp_path``; extra env via ``env=``."""

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300) -> Result:
        full_env = {
            **os.environ,
            "ANSWERDESK_STORE__PATH": str(tmp_path / "store" / "kb.db"),
            "HF_HUB_OFFLINE": "1",
            **(env or {}),
        }
        proc = subprocess.run(
            [ANSWERDESK, *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd or tmp_path,
            timeout=timeout,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
