"""MessageStore conformance, on both databases.

Protocol: every operation a workflow makes (send, receive, set an event, write a stream, finish a
wait) commits its effect and the workflow's step row in one transaction, only while the workflow
is owned by the caller under its epoch; otherwise it writes nothing and says so. A send with an
idempotency key already used is a DUPLICATE (sent once); a message is received by one receiver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from durable_core.storage import Database, ReceiveResult, SendResult, StepStore, StepWrite
from durable_core.storage.messages import MessageStore

MakeWorkflow = Callable[..., str]  # the make_workflow fixture (tests/storage/conftest.py)


def _step(
    step_id: int, *, workflow_id: str = "sender", epoch: int = 0, name: str = "durable.op"
) -> StepWrite:
    return StepWrite(
        workflow_id=workflow_id,
        executor_id="exec-a",
        owner_epoch=epoch,
        step_id=step_id,
        name=name,
        output=None,
        serialization="json",
        started_at=1,
    )


def _send(
    messages: MessageStore, key: str | None, step: StepWrite | None = None, to: str = "receiver"
) -> SendResult:
    return messages.send(
        destination_id=to,
        topic="t",
        message='"hello"',
        serialization="json",
        idempotency_key=key,
        now=5,
        step=step,
    )


def test_send_is_idempotent_and_records_the_senders_step(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("sender")
    make_workflow("receiver")
    messages, steps = MessageStore(db), StepStore(db)
    result = _send(messages, "sender:1", _step(1))
    assert result is SendResult.SENT
    assert steps.get("sender", 1) is not None
    assert _send(messages, "sender:1", _step(1)) is SendResult.DUPLICATE  # a replayed send
    assert _send(messages, "client-key") is SendResult.SENT  # from outside a workflow: no step
    assert _send(messages, "client-key") is SendResult.DUPLICATE
    assert _send(messages, None, to="nobody") is SendResult.NO_DESTINATION
    received = [messages.consume(topic="t", step=_step(n, workflow_id="receiver"), now=6) for n in (1, 2, 3)]
    assert [r[0] for r in received] == [ReceiveResult.RECEIVED, ReceiveResult.RECEIVED, ReceiveResult.EMPTY]


def test_a_send_without_ownership_writes_nothing(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("sender")
    make_workflow("receiver")
    messages, steps = MessageStore(db), StepStore(db)
    assert _send(messages, "sender:1", _step(1, epoch=4)) is SendResult.NOT_OWNER
    assert steps.load("sender") == {}
    assert messages.consume(topic="t", step=_step(1, workflow_id="receiver"), now=6)[0] is ReceiveResult.EMPTY


def test_receive_takes_messages_in_order_with_its_step(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("receiver")
    messages, steps = MessageStore(db), StepStore(db)
    for text in ("1", "2"):
        messages.send(
            destination_id="receiver",
            topic="t",
            message=text,
            serialization="json",
            idempotency_key=None,
            now=5,
        )
    assert messages.consume(topic="other", step=_step(1, workflow_id="receiver"), now=6) == (
        ReceiveResult.EMPTY,
        None,
        None,
    )
    assert steps.load("receiver") == {}  # an empty receive records nothing
    assert messages.consume(topic="t", step=_step(1, workflow_id="receiver"), now=6) == (
        ReceiveResult.RECEIVED,
        "1",
        "json",
    )
    step = steps.get("receiver", 1)
    assert step is not None and step.output == "1"  # the recv step records the message
    # a receiver that lost the workflow takes nothing
    assert messages.consume(topic="t", step=_step(2, workflow_id="receiver", epoch=9), now=6)[0] is (
        ReceiveResult.NOT_OWNER
    )
    assert messages.consume(topic="t", step=_step(2, workflow_id="receiver"), now=6)[1] == "2"


def test_one_message_goes_to_one_of_two_concurrent_receivers(
    db: Database, make_workflow: MakeWorkflow
) -> None:
    make_workflow("receiver")
    messages = MessageStore(db)
    messages.send(
        destination_id="receiver", topic="t", message="1", serialization="json", idempotency_key=None, now=5
    )
    barrier = threading.Barrier(2)
    results: list[ReceiveResult] = []

    def receive(step_id: int) -> None:
        barrier.wait()
        results.append(messages.consume(topic="t", step=_step(step_id, workflow_id="receiver"), now=6)[0])

    threads = [threading.Thread(target=receive, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == sorted([ReceiveResult.RECEIVED, ReceiveResult.EMPTY])


def test_events_and_streams_are_written_only_by_the_owner(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("sender")
    messages, steps = MessageStore(db), StepStore(db)
    assert not messages.set_event(key="k", value="1", serialization="json", step=_step(1, epoch=2), now=5)
    assert messages.get_event("sender", "k") is None
    assert messages.set_event(key="k", value="1", serialization="json", step=_step(1), now=5)
    assert messages.set_event(key="k", value="2", serialization="json", step=_step(2), now=6)
    assert messages.get_event("sender", "k") == ("2", "json")
    assert not messages.write_stream(
        key="s", value="a", serialization="json", closed=False, step=_step(3, epoch=2), now=7
    )
    assert messages.write_stream(key="s", value="a", serialization="json", closed=False, step=_step(3), now=7)
    assert messages.write_stream(key="s", value=None, serialization="json", closed=True, step=_step(4), now=8)
    assert messages.read_stream("sender", "s", 0) == [(1, "a", "json", False), (2, None, "json", True)]
    assert list(steps.load("sender")) == [1, 2, 3, 4]


def test_a_wait_is_marked_and_finished_only_by_the_owner(db: Database, make_workflow: MakeWorkflow) -> None:
    make_workflow("sender")
    messages, steps = MessageStore(db), StepStore(db)

    def mark(epoch: int) -> bool:
        return messages.begin_wait(
            workflow_id="sender", executor_id="exec-a", owner_epoch=epoch, topic="t", deadline=99, step_id=1
        )

    assert mark(3) is False
    assert mark(0) is True
    assert messages.finish_wait(step=_step(1, epoch=3), now=9) is False
    assert steps.load("sender") == {}
    assert messages.finish_wait(step=_step(1), now=9) is True
    assert list(steps.load("sender")) == [1]
