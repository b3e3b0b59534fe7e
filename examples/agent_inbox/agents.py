"""Agents that stop and ask a person before they act, with durable waits (plain `durable_core`).

Each agent prepares an action with its (scripted, offline) model and tools, publishes what it
wants approved as the event ``approval_request``, and waits in ``recv("approval")``. The wait
is recorded with its deadline: the process can stop (restart, deploy, crash) and the agent,
resumed at the next launch, is still waiting for the same answer. The answer is a message
``{"approved": bool, "reviewer": str, "note": str}`` sent by ``engine.send(workflow_id, ..., topic="approval")``
from the inbox page (or any other process).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from durable_core import recv, set_event, step, workflow

__all__ = ["APPROVAL_TOPIC", "DEMO_AGENTS", "REQUEST_EVENT", "deploy_agent", "outreach_agent", "refund_agent"]

APPROVAL_TOPIC = "approval"
REQUEST_EVENT = "approval_request"
WAIT_SECONDS = 7 * 24 * 3600  # a person may take days to answer; the deadline survives restarts


@dataclass(frozen=True)
class Decision:
    approved: bool
    reviewer: str = "someone"
    note: str = ""


def ask_for_approval(agent: str, action: str, details: dict[str, Any]) -> Decision:
    """Publish the request, then wait durably for a person's decision (a timeout counts as a rejection)."""
    set_event(REQUEST_EVENT, {"agent": agent, "action": action, "details": details})
    message = recv(APPROVAL_TOPIC, timeout_seconds=WAIT_SECONDS)
    if not isinstance(message, dict):
        return Decision(approved=False, reviewer="timeout", note="nobody answered in time")
    return Decision(
        approved=bool(message.get("approved")),
        reviewer=str(message.get("reviewer", "someone")),
        note=str(message.get("note", "")),
    )


# -- a support agent that wants to refund an order ---------------------------------------------


@step()
def read_ticket(ticket_id: str) -> dict[str, Any]:
    return {"ticket": ticket_id, "order": "A-1042", "amount": 120.0, "text": "The kettle arrived broken."}


@step(name="refund.model_request")
def propose_refund(ticket: dict[str, Any]) -> dict[str, Any]:
    return {"order": ticket["order"], "amount": ticket["amount"], "reason": "damaged in transit"}


@step()
def issue_refund(order: str, amount: float) -> str:
    return f"refunded {amount:.2f} EUR on order {order}"


@workflow()
def refund_agent(ticket_id: str) -> str:
    proposal = propose_refund(read_ticket(ticket_id))
    decision = ask_for_approval(
        "refund agent", f"Refund {proposal['amount']:.2f} EUR on order {proposal['order']}", proposal
    )
    if not decision.approved:
        return f"refund declined by {decision.reviewer}: {decision.note or 'no reason given'}"
    return issue_refund(proposal["order"], proposal["amount"]) + f" (approved by {decision.reviewer})"


# -- a sales agent that wants to send an email ---------------------------------------------------


@step(name="outreach.model_request")
def draft_email(lead: str) -> dict[str, str]:
    return {
        "to": f"{lead}@example.com",
        "subject": "Your trial",
        "body": f"Hi {lead}, how is the trial going?",
    }


@step()
def send_email(to: str, subject: str) -> str:
    return f"sent {subject!r} to {to}"


@workflow()
def outreach_agent(lead: str) -> str:
    email = draft_email(lead)
    decision = ask_for_approval(
        "outreach agent", f"Send the email {email['subject']!r} to {email['to']}", email
    )
    if not decision.approved:
        return f"email not sent ({decision.reviewer} rejected it)"
    return send_email(email["to"], email["subject"]) + f" (approved by {decision.reviewer})"


# -- an ops agent that wants to deploy ----------------------------------------------------------------


@step()
def run_checks(service: str) -> dict[str, Any]:
    return {"service": service, "tests": "412 passed", "version": "2.4.1"}


@step()
def deploy(service: str, version: str) -> str:
    return f"deployed {service} {version}"


@workflow()
def deploy_agent(service: str) -> str:
    checks = run_checks(service)
    decision = ask_for_approval("deploy agent", f"Deploy {service} {checks['version']} to production", checks)
    if not decision.approved:
        return f"deploy of {service} cancelled by {decision.reviewer}"
    return deploy(service, checks["version"]) + f" (approved by {decision.reviewer})"


# (workflow id, agent, argument): fixed ids, so starting the demo twice never starts them twice
DEMO_AGENTS = [
    ("refund-ticket-981", refund_agent, "ticket-981"),
    ("outreach-ada", outreach_agent, "ada"),
    ("deploy-billing", deploy_agent, "billing"),
]
