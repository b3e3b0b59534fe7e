"""SQL for usage: the model-call steps of workflow trees, and budgets.

Usage lives on step rows (written with the step's outcome); a workflow's usage is the sum over
its own steps and its descendants' (a recursive walk of `parent_workflow_id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ._database import Database
from ._schema import workflows

__all__ = ["UsageRow", "UsageStore"]


@dataclass(frozen=True, slots=True)
class UsageRow:
    root: str  # the tree's top workflow (the one asked for)
    root_name: str
    workflow_id: str
    completed_at: int | None
    usage: str  # the step's JSON usage list


def _tree_sql(seed: str, since: bool) -> str:
    return (
        "WITH RECURSIVE tree(root, root_name, wid) AS ("
        f"SELECT workflow_id, name, workflow_id FROM workflows WHERE {seed} "
        "UNION ALL SELECT tree.root, tree.root_name, w.workflow_id FROM workflows w "
        "JOIN tree ON w.parent_workflow_id = tree.wid) "
        "SELECT tree.root, tree.root_name, s.workflow_id, s.completed_at, s.usage FROM tree "
        "JOIN steps s ON s.workflow_id = tree.wid WHERE s.usage IS NOT NULL"
        + (" AND s.completed_at >= :since" if since else "")
    )


class UsageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def tree_rows(
        self,
        *,
        workflow_ids: Sequence[str] | None = None,
        names: Sequence[str] | None = None,
        since: int | None = None,
    ) -> list[UsageRow]:
        """Model-call steps of the trees rooted at `workflow_ids` (else at every top-level workflow,
        optionally only those named `names`), completed at or after `since`."""
        params: dict[str, object] = {}
        if workflow_ids is not None:
            if not workflow_ids:
                return []
            marks = ", ".join(f":w{i}" for i in range(len(workflow_ids)))
            params.update({f"w{i}": wid for i, wid in enumerate(workflow_ids)})
            seed = f"workflow_id IN ({marks})"
        else:
            seed = "parent_workflow_id IS NULL"
            if names:
                marks = ", ".join(f":n{i}" for i in range(len(names)))
                params.update({f"n{i}": name for i, name in enumerate(names)})
                seed += f" AND name IN ({marks})"
        if since is not None:
            params["since"] = since
        statement = self.db.sql(_tree_sql(seed, since is not None))

        def run() -> list[UsageRow]:
            with self.db.read() as conn:
                return [UsageRow(*r) for r in conn.exec_driver_sql(statement, params)]

        return self.db.retrying(run, what="read usage")

    def budget_of(self, workflow_id: str) -> str | None:
        """The budget (JSON) set on a workflow, as it stands now (raised or not)."""
        with self.db.read() as conn:
            return conn.execute(
                sa.select(workflows.c.budget).where(workflows.c.workflow_id == workflow_id)
            ).scalar_one_or_none()

    def set_budget(self, workflow_id: str, budget: str) -> bool:
        """Replace the budget of the workflow that holds one; True if it held one."""

        def run() -> bool:
            with self.db.write() as conn:
                return (
                    conn.execute(
                        sa.update(workflows)
                        .where(workflows.c.workflow_id == workflow_id, workflows.c.budget.is_not(None))
                        .values(budget=budget)
                    ).rowcount
                    == 1
                )

        return self.db.retrying(run, what="raise budget")
