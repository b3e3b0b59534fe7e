"""The example's own chunk index: a small SQLite file next to the example, not the engine's database.

Why separate: the engine's tables belong to `durable_core.storage`; an application keeps its
data (here, chunks and vectors; in production, a vector database) wherever it likes. Writes
are idempotent (a document's chunks are replaced as a whole), because the step that was in
flight at a crash runs again. `embed_log` records every embedding call so the crash test can
prove that only documents in flight at the kill were embedded twice.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ChunkIndex"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    doc_id TEXT NOT NULL, chunk_no INTEGER NOT NULL, text TEXT NOT NULL, vector TEXT NOT NULL,
    PRIMARY KEY (doc_id, chunk_no)
);
CREATE TABLE IF NOT EXISTS embed_log (doc_id TEXT NOT NULL, pid INTEGER NOT NULL);
"""


class ChunkIndex:
    """Chunks and their vectors, in a SQLite file shared by every worker process on this host."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: readers and writers of many workers
            conn.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Generator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def log_embedding(self, doc_id: str, pid: int) -> None:
        with self._connect() as conn:
            conn.execute("INSERT INTO embed_log (doc_id, pid) VALUES (?, ?)", (doc_id, pid))

    def replace(self, doc_id: str, chunks: Sequence[str], vectors: Sequence[Sequence[float]]) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            conn.executemany(
                "INSERT INTO chunks (doc_id, chunk_no, text, vector) VALUES (?, ?, ?, ?)",
                [
                    (doc_id, n, text, json.dumps(list(v)))
                    for n, (text, v) in enumerate(zip(chunks, vectors, strict=True))
                ],
            )

    def counts(self) -> tuple[int, int]:
        """(documents, chunks) stored."""
        with self._connect() as conn:
            row = conn.execute("SELECT COUNT(DISTINCT doc_id), COUNT(*) FROM chunks").fetchone()
        return int(row[0]), int(row[1])

    def embeddings_per_document(self) -> dict[str, int]:
        with self._connect() as conn:
            rows = conn.execute("SELECT doc_id, COUNT(*) FROM embed_log GROUP BY doc_id").fetchall()
        return {str(doc): int(n) for doc, n in rows}

    def search(self, query_vector: Sequence[float], limit: int = 3) -> list[tuple[float, str, str]]:
        """Brute-force cosine search (vectors are unit length): (score, doc_id, text), best first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT doc_id, text, vector FROM chunks").fetchall()
        scored: list[tuple[float, str, str]] = []
        for doc_id, text, vector in rows:
            values: list[float] = json.loads(vector)
            score = math.fsum(a * b for a, b in zip(query_vector, values, strict=False))
            scored.append((score, str(doc_id), str(text)))
        scored.sort(reverse=True)
        return scored[:limit]
