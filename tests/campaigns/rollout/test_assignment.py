"""The documented evaluation order, stage kinds, states and fail-closed behaviour of `assign`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.errors import InputError
from campaigns.rollout.assignment import ContactFrame, assign, spec_from_row
from campaigns.rollout.bucketing import bucket
from campaigns.rollout.targeting import AttributeRule, evaluate_rule, parse_targeting

INCLUDE, EXCLUDE, PROTECTED = 10, 20, 30
TARGETING = {
    "include_segments": [INCLUDE],
    "exclude_segments": [EXCLUDE],
    "protected_segments": [PROTECTED],
    "rules": [{"attribute": "plan", "op": "in", "value": ["pro", "team"]}],
    "allow_list": [1, 3],
    "beta": {"attribute": "beta", "op": "eq", "value": True},
}
PLAN = [
    {"kind": "shadow", "exposure_bp": 10_000},
    {"kind": "internal", "exposure_bp": 0},
    {"kind": "beta", "exposure_bp": 0},
    {"kind": "percent", "exposure_bp": 10_000, "unprotect_segments": [PROTECTED]},
]
#            contact: 1       2      3       4       5      6       7      8
PLANS = np.array(["pro", "pro", "free", None, "team", "free", "pro", None], dtype=object)
BETA = np.array([None, None, None, True, None, None, None, "true"], dtype=object)
SEGMENTS = {
    INCLUDE: np.array([1, 1, 0, 0, 1, 1, 0, 0], dtype=bool),
    EXCLUDE: np.array([1, 0, 0, 0, 0, 0, 0, 0], dtype=bool),
    PROTECTED: np.array([0, 1, 0, 0, 0, 0, 0, 0], dtype=bool),
}
FRAME = ContactFrame(ids=np.arange(1, 9), attributes={"plan": PLANS, "beta": BETA}, segments=SEGMENTS)


def _row(state: str, stage_index: int = 0, **kw: Any) -> SimpleNamespace:
    fields = dict(
        id=7,
        salt="order",
        state=state,
        stage_index=stage_index,
        stages=PLAN,
        holdout_bp=0,
        targeting=TARGETING,
        killed=False,
        model_version_id=None,
    )
    return SimpleNamespace(**(fields | kw))


def _arms(row: SimpleNamespace, frame: ContactFrame = FRAME) -> list[str]:
    return assign(spec_from_row(row), frame).arms.tolist()


def test_evaluation_order_at_each_stage() -> None:
    E, C, T = "excluded", "control", "treatment"
    # shadow: nobody forced; 1 excluded, 2 protected, 3/4/6/7/8 fail targeting, 5 eligible
    shadow = assign(spec_from_row(_row("shadow", 0)), FRAME)
    assert shadow.arms.tolist() == [E, E, E, E, C, E, E, E]
    assert shadow.shadow.tolist() == [False, False, False, False, True, False, False, False]
    # internal: the allow-list (3; 1 stays excluded: exclusion wins)
    assert _arms(_row("ramping", 1)) == [E, E, T, E, C, E, E, E]
    # beta: the beta group too (4, and 8 whose attribute is the text "true")
    assert _arms(_row("ramping", 2)) == [E, E, T, T, C, E, E, T]
    # 100%, protected segment released: 2 now in
    result = assign(spec_from_row(_row("ramping", 3)), FRAME)
    assert result.arms.tolist() == [E, T, T, T, T, E, E, T]
    assert result.forced.tolist() == [False, False, True, True, False, False, False, True]
    assert not result.shadow.any()


def test_states_draft_paused_completed_rolled_back() -> None:
    E, C, T = "excluded", "control", "treatment"
    assert _arms(_row("draft")) == [E, E, E, E, C, E, E, E]  # nobody exposed, not even the allow-list
    assert _arms(_row("paused", 2)) == _arms(_row("ramping", 2))  # a pause holds exposure
    assert _arms(_row("completed", 3)) == [E, T, T, T, T, E, E, T]
    assert _arms(_row("rolled_back", 3)) == [C] * 8  # fail closed: control for everyone


def test_completed_keeps_the_holdout() -> None:
    ids = np.arange(1, 2001)
    row = _row("completed", 3, targeting={}, holdout_bp=1000)
    arms = assign(spec_from_row(row), ContactFrame(ids=ids)).arms
    expected = np.array(["holdout" if bucket("order", int(i)) >= 9000 else "treatment" for i in ids])
    assert (arms == expected).all()


def test_kill_and_errors_fail_closed() -> None:
    killed = assign(spec_from_row(_row("ramping", 3, killed=True)), FRAME)
    assert killed.arms.tolist() == ["control"] * 8 and killed.failed == "" and not killed.forced.any()
    no_mask = ContactFrame(ids=FRAME.ids, attributes=FRAME.attributes, segments={INCLUDE: SEGMENTS[INCLUDE]})
    broken = assign(spec_from_row(_row("ramping", 3)), no_mask)
    assert broken.arms.tolist() == ["control"] * 8
    assert "KeyError" in broken.failed
    no_column = ContactFrame(ids=FRAME.ids, segments=SEGMENTS)
    assert assign(spec_from_row(_row("ramping", 3)), no_column).arms.tolist() == ["control"] * 8
    assert len(assign(spec_from_row(_row("ramping", 3)), no_column).buckets) == 8


def test_spec_from_row_rejects_a_bad_row() -> None:
    with pytest.raises(InputError):
        spec_from_row(_row("ramping", 0, stages=[{"kind": "percent", "exposure_bp": 20_000}]))
    with pytest.raises(ValueError, match="outside the plan"):
        spec_from_row(_row("ramping", 9))


def test_exposure_is_a_share_of_eligible_contacts() -> None:
    ids = np.arange(1, 40_001)
    plans = np.where(ids % 2 == 0, "pro", "free")
    row = _row(
        "ramping",
        0,
        stages=[{"kind": "percent", "exposure_bp": 2500}],
        targeting={"rules": [{"attribute": "plan", "op": "eq", "value": "pro"}]},
        holdout_bp=1000,
    )
    counts = assign(spec_from_row(row), ContactFrame(ids=ids, attributes={"plan": plans})).counts()
    assert counts["excluded"] == 20_000
    assert abs(counts["treatment"] - 5000) < 6 * (20_000 * 0.25 * 0.75) ** 0.5
    assert abs(counts["holdout"] - 2000) < 6 * (20_000 * 0.1 * 0.9) ** 0.5


def test_dark_launch_is_flagged_and_exposes_nobody() -> None:
    row = _row(
        "shadow",
        0,
        stages=[{"kind": "dark", "exposure_bp": 5000}, {"kind": "percent", "exposure_bp": 100}],
        targeting={},
    )
    spec = spec_from_row(row)
    result = assign(spec, ContactFrame(ids=np.arange(1, 1001)))
    assert spec.dark_launch and spec.exposure_bp == 0 and spec.shadow_bp == 5000
    assert result.counts()["treatment"] == 0
    assert result.shadow.sum() == sum(bucket("order", i) < 5000 for i in range(1, 1001))


RULES = [
    AttributeRule("x", op, value)
    for op, value in [
        ("eq", 3),
        ("ne", 3),
        ("in", (1, 2.0)),
        ("not_in", (1,)),
        ("gt", 2),
        ("gte", 2),
        ("lt", 2.5),
        ("lte", 0),
        ("exists", None),
        ("missing", None),
        ("eq", True),
        ("ne", False),
        ("eq", "b"),
        ("in", ("a", "c")),
        ("not_in", ("a",)),
        ("eq", "true"),
    ]
]


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["bool", "int", "float", "str"]),
    values=st.lists(st.integers(0, 4), min_size=1, max_size=30),
)
def test_vectorized_rules_agree_with_the_per_value_definition(kind: str, values: list[int]) -> None:
    if kind == "bool":
        typed = np.array([v % 2 == 1 for v in values])
    elif kind == "int":
        typed = np.array(values, dtype=np.int64)
    elif kind == "float":
        typed = np.array([np.nan if v == 4 else float(v) for v in values])
    else:
        typed = np.array([["a", "b", "c", "true", ""][v] for v in values])
    as_objects = np.empty(len(values), dtype=object)
    as_objects[:] = typed.tolist()
    for rule in RULES:
        assert (evaluate_rule(rule, typed) == evaluate_rule(rule, as_objects)).all(), (rule, typed)


def test_targeting_validation_says_where() -> None:
    with pytest.raises(InputError) as err:
        parse_targeting({"rules": [{"attribute": "plan", "op": "like", "value": "x"}]})
    assert err.value.where == "targeting.rules[0].op"
    with pytest.raises(InputError) as err:
        parse_targeting({"allow_list": [1, "two"]})
    assert err.value.where == "targeting.allow_list[1]"
    with pytest.raises(InputError):
        parse_targeting({"everyone": True})
