"""Inspection: the one way the `durable` CLI and the dashboard read and describe workflows.

Both tools sit on the public API of `durable_core` (`Engine` and its records); this package
adds what they share and nothing else: opening an existing database without running or
claiming anything (`open_engine`, `client_engine`), records as JSON-native dicts
(`workflow_dict`, `step_dict`), one-line texts for tables, usage and budgets, the waits a
person answers (`waiting_workflows`) and the complete command that answers each
(`answer_command`, `raise_command`). The CLI and the dashboard import only this package,
public `durable_core` names and their own modules; neither imports the other's private
modules (the CLI starts the dashboard through `durable_core.dashboard.serve`).
"""

from ._open import (
    CLIENT_APP_VERSION,
    NoDatabase,
    client_engine,
    database_option,
    open_engine,
    redact_url,
    resolve_url,
)
from ._options import DASHBOARD_PORT, STATUSES, parse_time
from ._records import show_workflow, step_dict, workflow_dict
from ._usage import (
    budget_limit,
    budget_text,
    cost_text,
    count_text,
    number_text,
    raise_command,
    raise_outcome,
    spent_text,
    tokens_text,
    total_usage,
    usage_dict,
)
from ._values import (
    duration_text,
    error_dict,
    error_line,
    format_ms,
    iso_ms,
    jsonable,
    plain_field,
    plain_time,
    pretty_json,
    preview,
    readable,
)
from ._waits import answer_command, describe_wait, in_inbox, reply_topic, waiting_workflows

__all__ = [
    "CLIENT_APP_VERSION",
    "DASHBOARD_PORT",
    "STATUSES",
    "NoDatabase",
    "answer_command",
    "budget_limit",
    "budget_text",
    "client_engine",
    "cost_text",
    "count_text",
    "database_option",
    "describe_wait",
    "duration_text",
    "error_dict",
    "error_line",
    "format_ms",
    "in_inbox",
    "iso_ms",
    "jsonable",
    "number_text",
    "open_engine",
    "parse_time",
    "plain_field",
    "plain_time",
    "pretty_json",
    "preview",
    "raise_command",
    "raise_outcome",
    "readable",
    "redact_url",
    "reply_topic",
    "resolve_url",
    "show_workflow",
    "spent_text",
    "step_dict",
    "tokens_text",
    "total_usage",
    "usage_dict",
    "waiting_workflows",
    "workflow_dict",
]
