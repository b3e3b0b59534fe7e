"""LangGraph's published conformance suite, all base and extended capabilities, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

from durable_langgraph import DurableCheckpointer
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from durable_core import Engine


async def test_conformance_suite_passes_every_capability(engine: Engine) -> None:
    @checkpointer_test(name="DurableCheckpointer")
    async def durable_saver() -> AsyncIterator[DurableCheckpointer]:
        yield DurableCheckpointer(engine)

    report = await validate(durable_saver)
    failures = {name: result.failures for name, result in report.results.items() if not result.passed}
    assert not failures, failures
    assert set(report.results) == {c.value for c in ALL_CAPABILITIES}
    assert all(result.detected and result.passed for result in report.results.values())
    assert report.passed_all_base()


def test_conformance_detects_every_optional_capability(engine: Engine) -> None:
    from langgraph.checkpoint.conformance.capabilities import DetectedCapabilities

    detected = DetectedCapabilities.from_instance(DurableCheckpointer(engine))
    assert not detected.missing, detected.missing
