"""The policy file: validated with errors naming file and field, tenant overrides, hot reload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from answerdesk.errors import ConfigError
from answerdesk.guard.policy import PolicySource, bundled_policy, load_policy

GOOD = """
version: 3
sensitiveInformationPolicy:
  action: REDACT
  piiEntities: [EMAIL, {type: SSN, action: BLOCK}]
wordFilters:
  - {match: "share internal roadmap", action: CHALLENGE}
promptAttack: {threshold: 0.7, action: BLOCK}
failMode: {injection: open}
tenants:
  acme:
    wordFilters: [{match: "share internal roadmap", action: BLOCK}]
"""


def write(path: Path, text: str, *, bump: int = 0) -> Path:
    path.write_text(text, encoding="utf-8")
    if bump:  # a distinct modification time even on coarse file systems
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))
    return path


def test_a_good_file(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path / "p.yaml", GOOD))
    assert policy.version == "3"
    assert policy.sensitive_information_policy is not None
    assert policy.sensitive_information_policy.actions() == {"EMAIL": "REDACT", "US_SSN": "BLOCK"}
    assert policy.fails_open("injection") and not policy.fails_open("pii")
    assert policy.contextual_grounding is None and policy.denied_topics == ()


def test_tenant_overrides_replace_sections(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path / "p.yaml", GOOD))
    assert policy.for_tenant("acme").word_filters[0].action == "BLOCK"
    assert policy.for_tenant("other").word_filters[0].action == "CHALLENGE"
    assert policy.for_tenant("acme").prompt_attack == policy.prompt_attack


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nwordFilters: [{match: x, action: DENY}]", "'wordFilters.0.action': Input should be"),
        ("version: 1\nwordFilter: []", "unknown key 'wordFilter'"),
        ("wordFilters: []", "'version' is required"),
        ("version: 1\nfailMode: {pii: sideways}", "'failMode.pii'"),
        ("version: 1\nfailMode: {piii: open}", "unknown guard piii"),
        ("version: 1\npromptAttack: {threshold: 2}", "'promptAttack.threshold'"),
        ("version: [1\n", "not valid YAML or JSON"),
        ("[1, 2]", "expected a mapping"),
        (
            '{"version": 1, "tenants": {"a": {"deniedTopics": [{"name": "x"}]}}}',
            "'tenants.a.deniedTopics.0.definition'",
        ),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_hot_reload_and_a_malformed_reload_keeps_the_old_policy(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", GOOD)
    source = PolicySource(path)
    assert source.current().version == "3"
    write(path, GOOD.replace("version: 3", "version: 4"), bump=1)
    assert source.current().version == "4"
    assert source.generation == 1
    write(path, "version: 5\nwordFilters: [{match: x, action: DENY}]", bump=2)
    assert source.current().version == "4"
    assert source.error is not None and "wordFilters.0.action" in source.error
    path.unlink()
    assert source.current().version == "4"
    write(path, GOOD.replace("version: 3", "version: 6"), bump=3)
    assert source.current().version == "6"
    assert source.error is None


def test_a_first_load_that_fails_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read guard policy"):
        PolicySource(tmp_path / "missing.yaml")


def test_the_bundled_policy_is_valid() -> None:
    policy = bundled_policy()
    assert policy.sensitive_information_policy is not None
    assert policy.prompt_attack is not None and policy.contextual_grounding is not None
    assert policy.for_tenant("acme-retail").word_filters[0].action == "BLOCK"
