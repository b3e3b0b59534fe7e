"""The crash-safety kit (`durable_core.testing.check_crash_safety`): it passes safe workflows at every
crash point and catches deliberately unsafe ones (a step that is not idempotent, a workflow that
branches on wall time, a tool called outside a step)."""

from __future__ import annotations

from pathlib import Path

import crash_kit_app as app
import pytest

from durable_core.testing import (
    CrashPoint,
    CrashReport,
    SimulatedCrash,
    check_crash_safety,
    crash_before_step,
    crash_ledger,
    run_script,
    temporary_engine,
    wait_until_waiting,
)


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kit' / 'durable.db'}"


def _phases(report: CrashReport) -> list[tuple[str, int, str]]:
    return [(p.point.workflow_id, p.point.step_id, p.point.phase) for p in report.points]


def test_the_existing_helpers_keep_their_names() -> None:
    assert callable(crash_before_step) and callable(run_script)
    assert callable(temporary_engine) and callable(wait_until_waiting)
    crash_ledger.record("nothing", "outside a check: a no-op")


@pytest.mark.parametrize("process", ["subprocess", "in-process"])
def test_a_safe_workflow_recovers_at_every_crash_point(tmp_path: Path, process: str) -> None:
    report = check_crash_safety(app.place_order, "o-7", database_url=_url(tmp_path), process=process)
    report.assert_ok()
    assert report.baseline_result == "shipped o-7 for 43"
    assert [s.name for s in report.workflows["crash-safety-place_order"]] == ["reserve", "price", "ship"]
    wid = "crash-safety-place_order"
    assert _phases(report) == [(wid, k, phase) for k in (1, 2, 3) for phase in ("before", "after")]
    assert report.matrix_size == 6
    for point in report.points:
        assert point.reached and point.result_equal and not point.executed_again, point
        assert point.crash_seconds > 0 and point.recovery_seconds > 0
    assert [check.ok for check in report.replay] == [True]
    assert "6 crash points over 3 steps" in report.summary()
    assert "before crash-safety-place_order:2 price" in report.table()


def test_a_non_idempotent_step_is_caught_in_its_in_flight_window(tmp_path: Path) -> None:
    report = check_crash_safety(app.checkout, "o-1", database_url=_url(tmp_path))
    assert not report.ok
    # the first run recorded a crash_ledger effect in step 3, so its in-flight window is in the matrix
    in_flight = [p for p in report.points if p.point.phase == "in-flight"]
    assert [(p.point.step_id, p.point.step_name) for p in in_flight] == [(3, "charge_card")]
    [point] = in_flight
    assert point.result_equal  # same result: the engine re-ran the step in flight, as designed...
    assert [str(s) for s in point.allowed_again] == ["crash-safety-checkout:3 charge_card"]
    assert not point.unexpected_again
    [effect] = point.repeated_effects  # ...but the card was charged twice
    assert (effect.effect, effect.key, effect.count, effect.expected) == ("charge-card", "o-1", 2, 1)
    assert "in step crash-safety-checkout:3 charge_card" in effect.where
    assert all(p.ok for p in report.points if p.point.phase != "in-flight")
    with pytest.raises(AssertionError) as failure:
        report.assert_ok()
    message = str(failure.value)
    assert "in-flight crash-safety-checkout:3 charge_card" in message and "FAIL" in message
    assert "side effect repeated: charge-card[o-1] x2" in message and "idempotent" in message


def test_an_idempotent_charge_passes_the_same_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASH_KIT_PAYMENTS", str(tmp_path / "payments.json"))
    report = check_crash_safety(
        app.checkout_idempotent, "o-2", database_url=_url(tmp_path), crash_points="all"
    )
    report.assert_ok()
    assert [p.point.phase for p in report.points].count("in-flight") == 3
    charge = next(p for p in report.points if p.point.phase == "in-flight" and p.point.step_id == 3)
    assert [s.step_id for s in charge.allowed_again] == [3] and not charge.repeated_effects


def test_a_workflow_that_branches_on_wall_time_is_caught_by_the_early_replay(tmp_path: Path) -> None:
    report = check_crash_safety(app.branches_on_wall_time, database_url=_url(tmp_path))
    assert not report.ok
    assert report.skipped_matrix and report.points == []  # found before the matrix
    [check] = report.replay
    assert not check.ok
    assert any(
        "step 2 was recorded as 'careful_answer' but the replay called 'quick_answer'" in p
        for p in check.problems
    )
    with pytest.raises(AssertionError, match="replay of crash-safety-branches_on_wall_time"):
        report.assert_ok()


def test_wall_time_branching_also_shows_in_the_matrix_with_the_step(tmp_path: Path) -> None:
    report = check_crash_safety(
        app.branches_on_wall_time, database_url=_url(tmp_path), replay=False, process="in-process"
    )
    assert not report.ok
    by_point = {(p.point.step_id, p.point.phase): p for p in report.points}
    after_answer = by_point[(2, "after")]  # the answer is recorded; the replay of `measure` is instant
    assert any(
        "step 2: recorded 'careful_answer', the recovered run called 'quick_answer'" in n
        for n in after_answer.nondeterminism
    )
    before_answer = by_point[(2, "before")]  # nothing recorded at 2 yet: the other branch runs live
    assert not before_answer.result_equal
    assert any("'quick'" in d and "'careful'" in d for d in before_answer.differences)


def test_a_tool_called_outside_a_step_is_caught(tmp_path: Path) -> None:
    early = check_crash_safety(app.tool_outside_a_step, "ada@example.com", database_url=_url(tmp_path))
    [check] = early.replay
    assert any(
        "side effect send-email[ada@example.com]" in p and "not inside a step" in p for p in check.problems
    )

    report = check_crash_safety(
        app.tool_outside_a_step, "ada@example.com", database_url=_url(tmp_path), replay=False
    )
    assert not report.ok
    by_point = {(p.point.step_id, p.point.phase): p for p in report.points}
    # killed before step 2: the email went out in the crashed run, and again when the replay passed it
    [effect] = by_point[(2, "before")].repeated_effects
    assert (effect.effect, effect.count) == ("send-email", 2)
    assert "outside any step" in effect.where
    assert not by_point[(1, "after")].repeated_effects  # killed before the email: sent once


def test_async_steps_in_gather_allow_only_the_one_in_flight(tmp_path: Path) -> None:
    report = check_crash_safety(app.gather_twice, 1, database_url=_url(tmp_path), process="in-process")
    report.assert_ok()
    assert report.baseline_result == 10 + 20 + 30
    by_point = {(p.point.step_id, p.point.phase): p for p in report.points}
    # killed before step 2's body: step 1 (started by the same gather) was in flight and runs again
    assert [s.step_id for s in by_point[(2, "before")].allowed_again] == [1]
    assert not by_point[(3, "before")].executed_again


def test_queued_children_and_a_parent(tmp_path: Path) -> None:
    report = check_crash_safety(app.index_texts, ["ab", "cde"], database_url=_url(tmp_path))
    report.assert_ok()
    assert set(report.workflows) == {"crash-safety-index_texts", "doc-ab", "doc-cde"}
    assert report.baseline_result == 10
    assert report.matrix_size == 2 * report.step_count == 2 * (4 + 2 + 2)


def test_waits_answered_by_the_kit(tmp_path: Path) -> None:
    report = check_crash_safety(
        app.ask_approval,
        "deploy",
        database_url=_url(tmp_path),
        answer={"approval": {"approved": True}},
        process="in-process",
    )
    report.assert_ok()
    assert report.baseline_result == "shipped deploy for 1"
    names = [s.name for s in report.workflows["crash-safety-ask_approval"]]
    assert names == ["reserve", "durable.set_event", "durable.recv", "ship"]
    # set_event and recv are recorded by engine operations: "after" crashes at the next boundary
    after_recv = next(p for p in report.points if p.point.step_id == 3 and p.point.phase == "after")
    assert after_recv.reached and "next boundary" in after_recv.note

    by_function = check_crash_safety(
        app.ask_approval, "deploy", database_url=_url(tmp_path), answer=app.approve
    )
    by_function.assert_ok()


def test_a_driver_starting_several_workflows(tmp_path: Path) -> None:
    report = check_crash_safety(app.start_two_orders, database_url=_url(tmp_path))
    report.assert_ok()
    assert report.baseline_result == ["shipped o-1 for 43", "shipped o-2 for 43"]
    assert set(report.workflows) == {"order-o-1", "order-o-2"}
    assert report.matrix_size == 12


def test_workflow_ids_that_change_between_runs_are_reported(tmp_path: Path) -> None:
    report = check_crash_safety(app.start_with_random_id, database_url=_url(tmp_path), process="in-process")
    assert not report.ok
    assert all(not p.reached for p in report.points)
    assert "give every workflow a fixed id" in report.table()


def test_explicit_crash_points(tmp_path: Path) -> None:
    wid = "order-xyz"
    report = check_crash_safety(
        app.place_order,
        "o-3",
        database_url=_url(tmp_path),
        workflow_id=wid,
        crash_points=[CrashPoint(wid, 2, "in-flight"), "before"],
        process="in-process",
    )
    report.assert_ok()
    assert [str(p.point) for p in report.points] == [
        f"in-flight {wid}:2 price",
        f"before {wid}:1 reserve",
        f"before {wid}:2 price",
        f"before {wid}:3 ship",
    ]
    assert [s.step_id for s in report.points[0].allowed_again] == [2]


def test_a_callable_that_cannot_cross_processes_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="process='in-process'"):
        check_crash_safety(lambda: app.place_order("o-1"), database_url=_url(tmp_path))
    report = check_crash_safety(
        lambda: app.place_order("o-1"), database_url=_url(tmp_path), process="in-process"
    )
    report.assert_ok()


def test_only_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SQLite"):
        check_crash_safety(app.place_order, "o", database_url="postgresql+psycopg://u@h/db")
    with pytest.raises(ValueError, match="crash_points"):
        check_crash_safety(app.place_order, "o", database_url=_url(tmp_path), crash_points="sometimes")


def test_a_first_run_without_workflows_is_reported(tmp_path: Path) -> None:
    report = check_crash_safety(len, "abc", database_url=_url(tmp_path), process="in-process")
    assert not report.ok and report.points == []
    assert "started no durable workflow" in report.table()


def test_simulated_crash_is_not_an_exception() -> None:
    assert issubclass(SimulatedCrash, BaseException) and not issubclass(SimulatedCrash, Exception)


def test_no_hook_stays_installed_after_a_check(tmp_path: Path) -> None:
    from durable_core import _runtime

    check_crash_safety(app.place_order, "o-4", database_url=_url(tmp_path), process="in-process")
    assert _runtime.CRASH_HOOKS == []  # the hot path is back to a falsy-list check
    assert not any((tmp_path / "kit").iterdir())  # the kit's databases and ledgers are gone


def test_a_completed_step_executed_again_is_not_allowed() -> None:
    """The comparison itself: a step that started in the crashed run and was recorded before the crash
    must not run again (a durability bug); one that was still in flight may."""
    from durable_core.testing import PointResult, _compare, _FinalState, _RunResult

    state = _FinalState("wf", "SUCCESS", '"done"', None, None, ((1, "a"), (2, "b")))
    baseline = _RunResult(result="done", states={"w": state})
    recovery = _RunResult(result="done", states={"w": state}, recorded_at_start=frozenset({("w", 1)}))
    entries = [
        {"t": "run", "wf": "w", "step": 1, "name": "a", "phase": "crash"},
        {"t": "run", "wf": "w", "step": 2, "name": "b", "phase": "crash"},
        {"t": "crash", "wf": "w", "step": 2, "phase": "crash"},
        {"t": "run", "wf": "w", "step": 1, "name": "a", "phase": "recovery"},  # recorded, yet ran again
        {"t": "run", "wf": "w", "step": 2, "name": "b", "phase": "recovery"},  # in flight: allowed
    ]
    result = PointResult(CrashPoint("w", 2, "in-flight", "b"), reached=True)
    _compare(result, baseline, recovery, entries, [])
    assert result.result_equal
    assert [str(s) for s in result.allowed_again] == ["w:2 b"]
    assert [str(s) for s in result.unexpected_again] == ["w:1 a"]
    assert not result.ok
    assert "step executed again although it had completed: w:1 a" in result.problems()
