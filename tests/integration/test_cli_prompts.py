"""``answerdesk prompts`` against a real SQLite file, through Typer's runner on the command group itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from answerdesk.cli import prompts
from answerdesk.cli.context import AppContext
from answerdesk.errors import ConfigError, InputError, NotFound
from answerdesk.prompts import TEMPLATES_DIR, PromptLabelStore

runner = CliRunner()


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store" / "kb.db"
    monkeypatch.chdir(tmp_path)  # no stray answerdesk.yaml
    monkeypatch.delenv("ANSWERDESK_CONFIG", raising=False)
    monkeypatch.setenv("ANSWERDESK_STORE__PATH", str(path))
    return path


@pytest.fixture
def two_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    shutil.copy(TEMPLATES_DIR / "answer@v1.md", folder / "answer@v1.md")
    v1 = (folder / "answer@v1.md").read_text(encoding="utf-8")
    (folder / "answer@v2.md").write_text(v1.replace("at most 5 sentences", "at most 3 sentences"), "utf-8")
    monkeypatch.setattr(prompts, "TEMPLATES_DIR", folder)
    return folder


def invoke(*args: str) -> Result:
    return runner.invoke(prompts.app, list(args), obj=AppContext())


def test_list_and_show_the_shipped_templates(store_path: Path) -> None:
    listed = invoke("list", "--json")
    assert listed.exit_code == 0, listed.output
    answer = next(p for p in json.loads(listed.stdout) if p["name"] == "answer")
    assert answer["default_version"] == max(v["version"] for v in answer["versions"])
    assert answer["versions"][0]["variables"] == ["question", "sources", "history", "refusal"]
    assert store_path.exists()  # the label store was created and migrated

    shown = invoke("show", "answer", "--version", "1")
    assert shown.exit_code == 0, shown.output
    assert "sha256: " in shown.stdout
    assert shown.stdout.endswith((TEMPLATES_DIR / "answer@v1.md").read_text(encoding="utf-8"))
    data = json.loads(invoke("show", "answer", "--version", "1", "--json").stdout)
    assert data["text"].startswith("---\ndescription:")
    assert len(data["sha256"]) == 64


def test_label_moves_are_shown_listed_and_recorded(store_path: Path, two_versions: Path) -> None:
    first = invoke("label", "answer", "production", "1", "--actor", "alice")
    assert first.exit_code == 0, first.output
    assert "answer: production (unset) → v1" in first.stdout
    moved = invoke("label", "answer", "production", "2")
    assert "answer: production v1 → v2" in moved.stdout
    invoke("label", "answer", "canary", "1", "--actor", "bob")

    listed = json.loads(invoke("list", "--json").stdout)
    assert listed == [
        {
            "name": "answer",
            "labels": {"canary": 1, "production": 2},
            "default_version": 2,
            "versions": [
                {**v, "labels": labels}
                for v, labels in zip(listed[0]["versions"], (["canary"], ["production"]), strict=True)
            ],
        }
    ]
    assert json.loads(invoke("show", "answer", "--label", "canary", "--json").stdout)["version"] == 1

    history = json.loads(invoke("history", "answer", "--json").stdout)
    assert [(e["label"], e["from_version"], e["to_version"], e["actor"]) for e in history] == [
        ("production", None, 1, "alice"),
        ("production", 1, 2, "cli"),
        ("canary", None, 1, "bob"),
    ]
    with PromptLabelStore(store_path) as store:  # in the configured store file, for every process to see
        assert store.labels("answer") == {"canary": 1, "production": 2}


def test_diff_between_two_versions(store_path: Path, two_versions: Path) -> None:
    result = invoke("diff", "answer", "1", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("--- answer@v1.md\n+++ answer@v2.md\n")
    assert "-3. Keep the answer short: at most 5 sentences.\n+3. Keep the answer short: at most 3 sentences.\n" in (
        result.stdout
    )


def test_errors_name_what_is_known(store_path: Path, two_versions: Path) -> None:
    cases: list[tuple[tuple[str, ...], type[Exception], str]] = [
        (("label", "answer", "production", "7"), NotFound, "known versions: 1, 2"),
        (("show", "faq"), NotFound, "known prompts: answer"),
        (("show", "answer", "--label", "beta"), NotFound, "known labels: (none)"),
        (("show", "answer", "--version", "1", "--label", "canary"), InputError, "not both"),
        (("label", "answer", "prod uction", "1"), InputError, "not a valid name"),
    ]
    for args, kind, message in cases:
        result = invoke(*args)
        assert isinstance(result.exception, kind), (args, result.output, result.exception)
        assert message in str(result.exception), args
    assert json.loads(invoke("history", "answer", "--json").stdout) == []


def test_a_broken_template_stops_list(store_path: Path, two_versions: Path) -> None:
    (two_versions / "answer@v3.md").write_text(
        "---\ndescription: d\nvariables: [question]\n---\nS\n---user---\n{{ question }} {{ locale }}\n", "utf-8"
    )
    result = invoke("list")
    assert isinstance(result.exception, ConfigError)
    assert "answer@v3.md" in str(result.exception) and "locale" in str(result.exception)
