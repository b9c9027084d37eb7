from __future__ import annotations

from pathlib import Path

import pytest

from answerdesk.config import load_settings
from answerdesk.errors import ConfigError


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.retrieval.k == 6
    assert settings.store.path == Path(".answerdesk/answerdesk.db")


def test_yaml_then_env_override(tmp_path: Path) -> None:
    cfg = tmp_path / "answerdesk.yaml"
    cfg.write_text("retrieval:\n  k: 9\nstore:\n  path: /tmp/x.db\n")
    settings = load_settings(cfg, environ={"ANSWERDESK_RETRIEVAL__K": "4", "ANSWERDESK_IDENTITY__TENANT": "acme"})
    assert settings.retrieval.k == 4
    assert settings.store.path == Path("/tmp/x.db")
    assert settings.identity.tenant == "acme"


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "answerdesk.yaml"
    cfg.write_text("retrieval:\n  kk: 9\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    message = str(err.value)
    assert str(cfg) in message
    assert "retrieval.kk" in message
    assert "known keys here" in message and "k," in message


def test_unknown_env_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="ANSWERDESK_RETRIEVAL__TOPK"):
        load_settings(None, environ={"ANSWERDESK_RETRIEVAL__TOPK": "3"})


def test_bad_value_and_bad_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text("retrieval:\n  k: lots\n")
    with pytest.raises(ConfigError, match=r"retrieval\.k"):
        load_settings(cfg, environ={})
    cfg.write_text("retrieval: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(cfg, environ={})


def test_overlap_must_be_below_size(tmp_path: Path) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text("chunking:\n  size_tokens: 64\n  overlap_tokens: 64\n")
    with pytest.raises(ConfigError, match="overlap_tokens"):
        load_settings(cfg, environ={})


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml", environ={})
