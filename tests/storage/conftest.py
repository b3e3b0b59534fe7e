"""Fixtures of the storage conformance suites: a migrated `Database` per backend (sqlite and
postgres, through tests/conftest.py's `database_url`) and a maker of workflow rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from storage_fixtures import workflow_values

from durable_core.storage import Database, WorkflowStore, migrate

MakeWorkflow = Callable[..., str]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    migrate(database)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def make_workflow(db: Database) -> MakeWorkflow:
    """`make_workflow(id, **columns)` inserts a workflow row and returns its id."""
    store = WorkflowStore(db)

    def make(workflow_id: str, **overrides: Any) -> str:
        assert store.insert(workflow_values(workflow_id, **overrides)) is True
        return workflow_id

    return make
