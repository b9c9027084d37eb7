"""Broken, hostile and missing inputs: a clear per-file error, the rest ingested, the right exit code."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.integration.conftest import ANSWERDESK, Runner

FAKE = {"ANSWERDESK_EMBEDDER__KIND": "fake"}


def _truncated_pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pa"


def test_bad_files_are_reported_and_the_rest_is_ingested(cli: Runner, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\nRefunds take five business days.\n")
    (docs / "empty.md").write_bytes(b"")
    (docs / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (docs / "broken.pdf").write_bytes(_truncated_pdf())
    (docs / "binary.html").write_bytes(os.urandom(2048))
    (docs / "deep.html").write_text(
        "<html><body>" + "<div>" * 50_000 + "deep text" + "</div>" * 50_000 + "</body></html>"
    )
    (docs / "bad-meta.md").write_text("# Meta\nSome text.\n")
    (docs / "bad-meta.md.meta.json").write_text('{"updated_at": "not a date"}')
    big = docs / "huge.txt"
    with big.open("wb") as fh:
        fh.truncate(51 * 1024 * 1024)

    result = cli("ingest", "docs", "missing-folder", "--json", env=FAKE)
    assert result.code == 1
    report = result.json()
    failed = {Path(f["source"]).name: f["reason"] for f in report["failures"]}
    assert {"empty.md", "latin1.txt", "broken.pdf", "binary.html", "bad-meta.md", "huge.txt", "missing-folder"} <= set(
        failed
    ), failed
    assert "UTF-8" in failed["latin1.txt"]
    assert "PDF" in failed["broken.pdf"]
    assert "updated_at" in failed["bad-meta.md"]
    assert "MB" in failed["huge.txt"] or "bytes" in failed["huge.txt"]
    assert report["added"] == 2  # good.md and the deeply nested HTML
    assert cli("ingest", "docs", "--allow-errors", "--json", env=FAKE).code == 0

    human = cli("ingest", "docs", env=FAKE)
    assert "failed:" in human.stderr and "latin1.txt" in human.stderr


def test_config_and_usage_errors(cli: Runner, tmp_path: Path) -> None:
    (tmp_path / "answerdesk.yaml").write_text("retrieval:\n  topk: 3\n")
    bad = cli("kb", "stats")
    assert bad.code == 3
    assert "answerdesk.yaml" in bad.stderr and "retrieval.topk" in bad.stderr
    (tmp_path / "answerdesk.yaml").unlink()
    assert cli("kb", "delete").code == 2
    helptext = cli("ingest", "--help")
    assert helptext.code == 0 and "--allow-errors" in helptext.stdout


def test_kill_9_mid_ingest_leaves_a_consistent_store(cli: Runner, tmp_path: Path) -> None:
    corpus = tmp_path / "many"
    corpus.mkdir()
    for i in range(3000):
        (corpus / f"doc{i:04}.md").write_text(f"# Article {i}\n" + f"Parcel {i} ships with carrier {i % 7}. " * 40)
    db = tmp_path / "store" / "kb.db"
    env = {**os.environ, "ANSWERDESK_STORE__PATH": str(db), **FAKE}
    proc = subprocess.Popen(
        [ANSWERDESK, "ingest", "many", "--no-progress"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    written = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    written = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            except sqlite3.Error:
                written = 0
            if written >= 200:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed; make the corpus larger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < written < 3000

    check = cli("kb", "check", env=FAKE)
    assert check.code == 0, check.stderr
    stats = cli("kb", "stats", "--json", env=FAKE).json()
    assert stats["chunks"] == stats["fts_rows"]

    rerun = cli("ingest", "many", "--json", env=FAKE)
    assert rerun.code == 0, rerun.stderr
    report = rerun.json()
    assert report["added"] + report["unchanged"] == 3000
    assert report["unchanged"] >= written - 1  # what had committed before the kill is kept
    assert cli("kb", "stats", "--json", env=FAKE).json()["documents"] == 3000
    assert cli("kb", "check", env=FAKE).code == 0
