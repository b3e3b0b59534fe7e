"""Replay fidelity (DESIGN §4): a replay returns exactly what the first run saw, or the FIRST run
fails with `SerializationError` naming the function, the step and the type. Never a silent
difference, never a failure that appears only after a crash. (SQLite and Postgres.)

Property-based: hypothesis draws an annotation (nested dataclasses, pydantic models, tuples, sets,
frozensets, bytes, enums, datetimes/dates/times/timedeltas, UUIDs, Decimals, Optional/Union,
unannotated/Any) and a value (usually of that annotation, sometimes not), runs a real workflow
whose step, input or output is that value, and replays the recorded workflow from the database
(`fork_workflow`, so the step result, inputs and output are decoded from their stored rows).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import math
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import pydantic
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from durable_core import Engine, SerializationError, step, workflow, workflow_options

# -- annotated types the properties draw from --------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = 2


class Tone(enum.StrEnum):
    LOW = "low"
    HIGH = "high"


class Level(enum.IntEnum):
    ONE = 1
    TWO = 2


@dataclasses.dataclass
class Blob:
    data: bytes
    when: dt.datetime
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Pair:
    left: int
    right: Blob | None
    ids: frozenset[uuid.UUID] = frozenset()


class Item(pydantic.BaseModel):
    name: str
    price: decimal.Decimal
    color: Color
    ratio: float
    when: dt.date


class Order(pydantic.BaseModel):
    items: list[Item]
    pair: Pair | None = None
    by_id: dict[int, str] = {}
    window: tuple[dt.time, dt.timedelta] | None = None


class Point(NamedTuple):
    x: int
    y: float


NO_HINT: Any = object()  # the function has no annotation at all

_text = st.text(max_size=12)  # NULs and any non-surrogate code point included
_float = st.floats(allow_nan=True, allow_infinity=True)
_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
_datetime = st.one_of(st.datetimes(), st.datetimes(timezones=_offsets))
_decimal = st.decimals(allow_nan=False, allow_infinity=False, places=4)
_blob = st.builds(
    Blob, data=st.binary(max_size=8), when=_datetime, tags=st.lists(_text, max_size=3).map(tuple)
)
_pair = st.builds(
    Pair,
    left=st.integers(),
    right=st.none() | _blob,
    ids=st.frozensets(st.uuids(), max_size=2),
)
_item = st.builds(
    Item, name=_text, price=_decimal, color=st.sampled_from(Color), ratio=_float, when=st.dates()
)
_order = st.builds(
    Order,
    items=st.lists(_item, max_size=3),
    pair=st.none() | _pair,
    by_id=st.dictionaries(st.integers(), _text, max_size=3),
    window=st.none() | st.tuples(st.times(timezones=st.none() | _offsets), st.timedeltas()),
)

# (annotation, strategy of values of that annotation)
_LEAVES: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (int, st.integers()),
    (float, _float),
    (str, _text),
    (bool, st.booleans()),
    (bytes, st.binary(max_size=10)),
    (decimal.Decimal, _decimal),
    (dt.datetime, _datetime),
    (dt.date, st.dates()),
    (dt.time, st.times(timezones=st.none() | _offsets)),
    (dt.timedelta, st.timedeltas()),
    (uuid.UUID, st.uuids()),
    (Color, st.sampled_from(Color)),
    (Tone, st.sampled_from(Tone)),
    (Level, st.sampled_from(Level)),
    (Blob, _blob),
    (Pair, _pair),
    (Item, _item),
    (Order, _order),
    (Point, st.builds(Point, st.integers(), _float)),
    (type(None), st.none()),
]
_HASHABLE: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (int, st.integers()),
    (str, _text),
    (bytes, st.binary(max_size=6)),
    (uuid.UUID, st.uuids()),
    (Color, st.sampled_from(Color)),
    (dt.date, st.dates()),
]


def _containers(
    inner: st.SearchStrategy[tuple[Any, st.SearchStrategy[Any]]],
) -> st.SearchStrategy[tuple[Any, st.SearchStrategy[Any]]]:
    hashable = st.sampled_from(_HASHABLE)
    return st.one_of(
        inner.map(lambda t: (list[t[0]], st.lists(t[1], max_size=3))),
        inner.map(lambda t: (tuple[t[0], ...], st.lists(t[1], max_size=3).map(tuple))),
        st.tuples(inner, inner).map(lambda ts: (tuple[ts[0][0], ts[1][0]], st.tuples(ts[0][1], ts[1][1]))),
        inner.map(lambda t: (dict[str, t[0]], st.dictionaries(_text, t[1], max_size=3))),
        st.tuples(hashable, inner).map(
            lambda ts: (dict[ts[0][0], ts[1][0]], st.dictionaries(ts[0][1], ts[1][1], max_size=3))
        ),
        hashable.map(lambda t: (set[t[0]], st.sets(t[1], max_size=3))),
        hashable.map(lambda t: (frozenset[t[0]], st.frozensets(t[1], max_size=3))),
        inner.map(lambda t: (t[0] | None, st.none() | t[1])),
        st.tuples(inner, inner).map(lambda ts: (ts[0][0] | ts[1][0], ts[0][1] | ts[1][1])),
    )


_annotated = st.recursive(st.sampled_from(_LEAVES), _containers, max_leaves=4)


@st.composite
def hinted_values(draw: st.DrawFn) -> tuple[Any, Any]:
    """(annotation, value): mostly a value of the annotation; sometimes unannotated, Any, or a mismatch."""
    hint, values = draw(st.one_of(st.sampled_from(_LEAVES), _annotated))
    value = draw(values)
    mode = draw(st.sampled_from(["typed"] * 6 + ["any", "none", "mismatch"]))
    if mode == "any":
        return Any, value
    if mode == "none":
        return NO_HINT, value
    if mode == "mismatch":
        other_hint, _ = draw(_annotated)
        return other_hint, value
    return hint, value


# -- the oracle: what "the replay returns the value the live run returned" means ---------------


def same(live: Any, replayed: Any) -> bool:
    """Equal values of the same types all the way down (NaN equals NaN; an int under a float
    annotation may come back as the equal float; datetimes agree on their UTC offset)."""
    if type(live) is not type(replayed):
        return type(live) is int and type(replayed) is float and live == replayed
    if isinstance(live, float):
        return live == replayed or (math.isnan(live) and math.isnan(replayed))
    if isinstance(live, list | tuple):
        return len(live) == len(replayed) and all(same(a, b) for a, b in zip(live, replayed, strict=True))
    if isinstance(live, dict):
        return len(live) == len(replayed) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(live.items(), replayed.items(), strict=True)
        )
    if isinstance(live, set | frozenset):
        return len(live) == len(replayed) and all(any(same(a, b) for b in replayed) for a in live)
    if dataclasses.is_dataclass(live):
        return all(same(getattr(live, f.name), getattr(replayed, f.name)) for f in dataclasses.fields(live))
    if isinstance(live, pydantic.BaseModel):
        return all(same(getattr(live, name), getattr(replayed, name)) for name in type(live).model_fields)
    if isinstance(live, dt.datetime | dt.time):
        return live == replayed and live.utcoffset() == replayed.utcoffset()
    return bool(live == replayed)


# -- dynamic steps and workflows, one per annotation --------------------------------------------

VALUES: dict[str, Any] = {}  # key -> the value a step or workflow returns live
SEEN: dict[str, Any] = {}  # workflow id -> what the body saw
_defs: dict[tuple[str, str], Any] = {}


def _annotate(fn: Callable[..., Any], hint: Any, param: str = "return") -> Callable[..., Any]:
    if hint is not NO_HINT:
        fn.__annotations__ = {param: hint}
    return fn


def _key(hint: Any) -> str:
    return "nohint" if hint is NO_HINT else uuid.uuid5(uuid.NAMESPACE_OID, repr(hint)).hex[:12]


def echo_step(hint: Any) -> Callable[..., Any]:
    """A step annotated `-> hint` that returns VALUES[key], and a workflow that runs it once."""
    name = _key(hint)
    if ("step", name) not in _defs:

        def produce(key):  # type: ignore[no-untyped-def]
            return VALUES[key]

        produce.__qualname__ = f"produce_{name}"
        inner = step(name=f"fidelity.produce_{name}")(_annotate(produce, hint))

        def run(key: str) -> None:
            SEEN[current_id()] = inner(key)

        run.__qualname__ = f"run_{name}"
        _defs["step", name] = workflow(name=f"fidelity.run_{name}")(run)
    return _defs["step", name]


def input_workflow(hint: Any) -> Callable[..., Any]:
    name = _key(hint)
    if ("input", name) not in _defs:

        def take(value):  # type: ignore[no-untyped-def]
            SEEN[current_id()] = value

        take.__qualname__ = f"take_{name}"
        _defs["input", name] = workflow(name=f"fidelity.take_{name}")(_annotate(take, hint, "value"))
    return _defs["input", name]


def output_workflow(hint: Any) -> Callable[..., Any]:
    name = _key(hint)
    if ("output", name) not in _defs:

        def give(key: str):  # type: ignore[no-untyped-def]
            return VALUES[key]

        give.__qualname__ = f"give_{name}"
        annotated = _annotate(give, hint)
        annotated.__annotations__["key"] = str
        _defs["output", name] = workflow(name=f"fidelity.give_{name}")(annotated)
    return _defs["output", name]


def current_id() -> str:
    from durable_core import current_workflow_id

    return current_workflow_id()


PROPERTY = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _hint_text(hint: Any) -> str:
    return "unannotated" if hint is NO_HINT else repr(hint)


# -- properties: through a real Engine and a real replay on each backend -------------------------


@PROPERTY
@given(case=hinted_values())
def test_step_result_replays_as_it_ran(engine: Engine, case: tuple[Any, Any]) -> None:
    hint, value = case
    flow = echo_step(hint)
    key = uuid.uuid4().hex
    VALUES[key] = value
    try:
        with workflow_options(workflow_id=key):
            flow(key)
    except SerializationError as exc:  # refused on the first run: named, and nothing was recorded
        message = str(exc)
        assert f"produce_{_key(hint)}" in message and key in message, message
        assert type(value).__qualname__ in message, message
        assert engine.get_workflow_status(key).status == "ERROR"
        assert engine.list_steps(key) == []
        event("refused on the first run")
        return
    event(f"replayed: {type(value).__qualname__}")
    assert SEEN[key] is value
    replay = engine.fork_workflow(key, 2, new_workflow_id=f"{key}-replay")  # step 1 comes from its row
    replay.get_result(timeout_seconds=30)
    assert same(value, SEEN[f"{key}-replay"]), (_hint_text(hint), value, SEEN[f"{key}-replay"])


@PROPERTY
@given(case=hinted_values())
def test_workflow_input_replays_as_it_ran(engine: Engine, case: tuple[Any, Any]) -> None:
    hint, value = case
    flow = input_workflow(hint)
    key = uuid.uuid4().hex
    try:
        handle = engine.start_workflow(flow, value)
    except SerializationError as exc:  # refused before anything was recorded
        message = str(exc)
        assert f"take_{_key(hint)}" in message and "'value'" in message, message
        assert type(value).__qualname__ in message, message
        event("refused on the first run")
        return
    event(f"replayed: {type(value).__qualname__}")
    handle.get_result(timeout_seconds=30)
    assert SEEN[handle.workflow_id] is value
    # the inputs come from the row
    replay = engine.fork_workflow(handle.workflow_id, 1, new_workflow_id=f"{key}-replay")
    replay.get_result(timeout_seconds=30)
    assert same(value, SEEN[f"{key}-replay"]), (_hint_text(hint), value, SEEN[f"{key}-replay"])


@PROPERTY
@given(case=hinted_values())
def test_workflow_output_replays_as_it_ran(engine: Engine, case: tuple[Any, Any]) -> None:
    hint, value = case
    flow = output_workflow(hint)
    key = uuid.uuid4().hex
    VALUES[key] = value
    handle = engine.start_workflow(flow, key)
    try:
        live = handle.get_result(timeout_seconds=30)
    except SerializationError as exc:
        message = str(exc)
        assert f"give_{_key(hint)}" in message and type(value).__qualname__ in message, message
        assert engine.get_workflow_status(handle.workflow_id).status == "ERROR"
        event("refused on the first run")
        return
    event(f"replayed: {type(value).__qualname__}")
    assert live is value
    # another handle, with no in-memory outcome: the output is decoded from its row
    stored = engine.retrieve_workflow(handle.workflow_id)
    stored._future = None  # pyright: ignore[reportPrivateUsage]
    replayed = stored.get_result(timeout_seconds=30)
    assert same(value, replayed), (_hint_text(hint), value, replayed)


# -- the cases of issue 16, one by one -----------------------------------------------------------


@dataclasses.dataclass
class Packet:
    raw: bytes
    inner: Blob


@step()
def make_packet() -> Packet:
    return Packet(b"\x00\xff", Blob(b"\xfe", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), ("a",)))


@workflow()
def packet_flow() -> None:
    SEEN[current_id()] = make_packet()


def test_bytes_inside_a_dataclass_replay_as_bytes(engine: Engine) -> None:
    """Issue 16.7: b'\\x00\\xff' in a dataclass came back as b'AP8=' (its base64 text)."""
    with workflow_options(workflow_id="packet"):
        packet_flow()
    engine.fork_workflow("packet", 2, new_workflow_id="packet-replay").get_result(timeout_seconds=30)
    replayed = SEEN["packet-replay"]
    assert replayed == SEEN["packet"]
    assert replayed.raw == b"\x00\xff" and replayed.inner.data == b"\xfe"


@step()
def unannotated_dataclass():  # type: ignore[no-untyped-def]
    return Packet(b"x", Blob(b"y", dt.datetime(2026, 1, 1), ()))


@step()
def unannotated_tuple() -> Any:
    return (1, 2)


@step()
def unannotated_int_keys() -> dict:  # type: ignore[type-arg]
    return {1: "one"}


@step()
def unannotated_bytes():  # type: ignore[no-untyped-def]
    return b"\x00\xff"


@workflow()
def unannotated_flow(which: str) -> None:
    {
        "dataclass": unannotated_dataclass,
        "tuple": unannotated_tuple,
        "int-keys": unannotated_int_keys,
        "bytes": unannotated_bytes,
    }[which]()


@pytest.mark.parametrize(
    ("which", "step_name", "type_name"),
    [
        ("dataclass", "unannotated_dataclass", "Packet"),
        ("tuple", "unannotated_tuple", "tuple"),
        ("int-keys", "unannotated_int_keys", "dict"),
        ("bytes", "unannotated_bytes", "bytes"),
    ],
)
def test_unannotated_value_that_would_replay_differently_fails_the_first_run(
    engine: Engine, which: str, step_name: str, type_name: str
) -> None:
    """Issue 16.8: a dataclass came back as a dict, a tuple as a list, int keys as str, bytes as str."""
    workflow_id = f"unannotated-{which}"
    with pytest.raises(SerializationError) as info, workflow_options(workflow_id=workflow_id):
        unannotated_flow(which)
    message = str(info.value)
    assert step_name in message and workflow_id in message and type_name in message, message
    assert info.value.step_id == 1
    assert engine.list_steps(workflow_id) == []  # nothing recorded that a replay would get wrong


@step()
def price() -> float:
    return None  # type: ignore[return-value]


@step()
def summarize(text: str) -> list[str]: ...  # the README's snippet: the body returns None


@workflow()
def violating_flow(which: str) -> None:
    price() if which == "price" else summarize("text")


@pytest.mark.parametrize(
    ("which", "step_name", "annotation"), [("price", "price", "float"), ("summary", "summarize", "list[str]")]
)
def test_value_violating_its_annotation_fails_the_first_run(
    engine: Engine, which: str, step_name: str, annotation: str
) -> None:
    """Issue 16.9: it succeeded live and only its replay raised a raw ValidationError."""
    workflow_id = f"violating-{which}"
    with pytest.raises(SerializationError) as info, workflow_options(workflow_id=workflow_id):
        violating_flow(which)
    message = str(info.value)
    assert step_name in message and workflow_id in message and annotation in message, message
    assert "NoneType" in message
    assert engine.get_workflow_status(workflow_id).status == "ERROR"


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@step()
def deep_any(depth: int) -> Any:
    return _nested(depth)


@step()
def deep_typed(depth: int) -> list[Any]:
    return _nested(depth)


@workflow()
def deep_flow(depth: int, typed: bool) -> None:
    SEEN[current_id()] = deep_typed(depth) if typed else deep_any(depth)


def test_deep_nesting_replays_or_fails_the_first_run_with_a_true_message(engine: Engine) -> None:
    """Issue 16.10: 201-254 levels were recorded but could not be decoded; past 255 the error
    spoke of a circular reference in a value that has none."""
    # unannotated: decoded as plain JSON, which reads every depth the encoder writes
    with workflow_options(workflow_id="deep-any"):
        deep_flow(230, False)
    engine.fork_workflow("deep-any", 2, new_workflow_id="deep-any-replay").get_result(timeout_seconds=30)
    assert SEEN["deep-any-replay"] == _nested(230)
    # annotated: pydantic decodes at most 200 levels, so the first run says so
    with (
        pytest.raises(SerializationError, match=r"deep_typed.*200 levels"),
        workflow_options(workflow_id="deep-typed"),
    ):
        deep_flow(230, True)
    # too deep to encode at all: the message says how deep, not "circular"
    with pytest.raises(SerializationError) as info, workflow_options(workflow_id="deep-300"):
        deep_flow(300, False)
    assert "nested 301 levels deep" in str(info.value) and "ircular" not in str(info.value)
    # a true cycle is named as one
    cycle: list[Any] = []
    cycle.append(cycle)
    VALUES["cycle"] = cycle
    with pytest.raises(SerializationError, match="reference cycle"), workflow_options(workflow_id="cycle"):
        echo_step(Any)("cycle")


def test_nan_and_infinities_replay_as_themselves(engine: Engine) -> None:
    for hint in (float, Any, list[float]):
        key = uuid.uuid4().hex
        value = [math.nan, math.inf, -math.inf, -0.0] if hint is not float else math.nan
        VALUES[key] = value
        with workflow_options(workflow_id=key):
            echo_step(hint)(key)
        engine.fork_workflow(key, 2, new_workflow_id=f"{key}-r").get_result(timeout_seconds=30)
        assert same(value, SEEN[f"{key}-r"])


def test_int_under_a_float_annotation_replays_as_the_equal_float(engine: Engine) -> None:
    key = uuid.uuid4().hex
    VALUES[key] = 3
    with workflow_options(workflow_id=key):
        echo_step(float)(key)
    engine.fork_workflow(key, 2, new_workflow_id=f"{key}-r").get_result(timeout_seconds=30)
    assert SEEN[f"{key}-r"] == 3.0 and type(SEEN[f"{key}-r"]) is float
