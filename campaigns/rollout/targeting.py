"""Targeting (pure): who may be in a rollout, evaluated over numpy columns of contacts.

Stored as JSON on `models.Rollout.targeting`::

    {"include_segments": [3, 4],          # any of them; empty: every contact
     "exclude_segments": [9],             # any of them: never in the rollout
     "protected_segments": [12],          # never exposed until a stage releases them
     "rules": [{"attribute": "plan", "op": "in", "value": ["pro", "team"]},
               {"attribute": "country", "op": "eq", "value": "United Kingdom"}],   # all must match
     "allow_list": [101, 102],            # contact ids: the internal alpha ring
     "beta": {"attribute": "beta", "op": "eq", "value": true},   # the opt-in beta ring (optional)
     "beta_segment": null}                # or a segment of beta testers (optional)

Rule values compare by kind: booleans (and the strings "true"/"false") with booleans, numbers with
numbers, text with text; a missing value (absent, None, NaN) matches only ``missing``, ``ne`` and
``not_in``. ``country`` reads the contact's country column, any other name its attributes. Typed
numpy columns take vectorized paths that give the same answers as the per-value path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from campaigns.errors import InputError

RULE_OPS = ("eq", "ne", "in", "not_in", "exists", "missing", "gt", "gte", "lt", "lte", "contains")
_KEYS = {
    "include_segments",
    "exclude_segments",
    "protected_segments",
    "rules",
    "allow_list",
    "beta",
    "beta_segment",
}
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class AttributeRule:
    attribute: str
    op: str
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"attribute": self.attribute, "op": self.op, "value": value}


@dataclass(frozen=True)
class Targeting:
    include_segments: tuple[int, ...] = ()
    exclude_segments: tuple[int, ...] = ()
    protected_segments: tuple[int, ...] = ()
    rules: tuple[AttributeRule, ...] = ()
    allow_list: tuple[int, ...] = ()
    beta: AttributeRule | None = None
    beta_segment: int | None = None

    def segment_ids(self) -> set[int]:
        ids = {*self.include_segments, *self.exclude_segments, *self.protected_segments}
        if self.beta_segment is not None:
            ids.add(self.beta_segment)
        return ids

    def attribute_names(self) -> set[str]:
        names = {r.attribute for r in self.rules}
        if self.beta is not None:
            names.add(self.beta.attribute)
        return names

    def to_json(self) -> dict[str, Any]:
        return {
            "include_segments": list(self.include_segments),
            "exclude_segments": list(self.exclude_segments),
            "protected_segments": list(self.protected_segments),
            "rules": [r.to_json() for r in self.rules],
            "allow_list": list(self.allow_list),
            "beta": None if self.beta is None else self.beta.to_json(),
            "beta_segment": self.beta_segment,
        }


# -- parsing ----------------------------------------------------------------------------------------


def _ids(raw: Any, where: str) -> tuple[int, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise InputError("must be a list of ids", where=where)
    out = []
    for i, value in enumerate(raw):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"must be a positive whole number, got {value!r}", where=f"{where}[{i}]")
        out.append(value)
    return tuple(dict.fromkeys(out))


def parse_rule(raw: Any, where: str) -> AttributeRule:
    if not isinstance(raw, Mapping):
        raise InputError("must be an object with attribute, op and value", where=where)
    attribute, op, value = raw.get("attribute"), raw.get("op", "eq"), raw.get("value")
    if not isinstance(attribute, str) or not attribute.strip():
        raise InputError("must name an attribute", where=f"{where}.attribute")
    if op not in RULE_OPS:
        raise InputError(f"must be one of {', '.join(RULE_OPS)}, got {op!r}", where=f"{where}.op")
    if op in ("in", "not_in"):
        if not isinstance(value, list | tuple):
            raise InputError(f"{op} needs a list of values", where=f"{where}.value")
        value = tuple(value)
    elif op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or _number(value) is None:
            raise InputError(f"{op} needs a number, got {value!r}", where=f"{where}.value")
    elif op in ("eq", "ne", "contains") and (value is None or isinstance(value, list | dict)):
        raise InputError(
            f"{op} needs a single value (use exists/missing for presence)", where=f"{where}.value"
        )
    return AttributeRule(attribute=attribute.strip(), op=op, value=value)


def parse_targeting(raw: Any, where: str = "targeting") -> Targeting:
    if raw is None:
        return Targeting()
    if not isinstance(raw, Mapping):
        raise InputError("must be an object", where=where)
    unknown = set(raw) - _KEYS
    if unknown:
        raise InputError(f"unknown key(s): {', '.join(sorted(unknown))}", where=where)
    rules = raw.get("rules") or []
    if not isinstance(rules, list | tuple):
        raise InputError("must be a list of rules", where=f"{where}.rules")
    beta_segment = raw.get("beta_segment")
    if beta_segment is not None and (isinstance(beta_segment, bool) or not isinstance(beta_segment, int)):
        raise InputError("must be a segment id", where=f"{where}.beta_segment")
    return Targeting(
        include_segments=_ids(raw.get("include_segments"), f"{where}.include_segments"),
        exclude_segments=_ids(raw.get("exclude_segments"), f"{where}.exclude_segments"),
        protected_segments=_ids(raw.get("protected_segments"), f"{where}.protected_segments"),
        rules=tuple(parse_rule(r, f"{where}.rules[{i}]") for i, r in enumerate(rules)),
        allow_list=_ids(raw.get("allow_list"), f"{where}.allow_list"),
        beta=None if raw.get("beta") is None else parse_rule(raw["beta"], f"{where}.beta"),
        beta_segment=beta_segment,
    )


# -- value semantics (the per-value path is the definition; vectorized paths must agree) -----------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return None if math.isnan(number) else number
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return None if math.isnan(number) else number
    return None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def canonical(value: Any) -> tuple[str, Any] | None:
    """The key two values are equal by: ("bool", b), ("num", x) or ("str", s); None when missing."""
    if _missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return ("num", float(value))
    text = value if isinstance(value, str) else str(value)
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return ("bool", lowered == "true")
    return ("str", text)


def _predicate(rule: AttributeRule) -> Callable[[Any], bool]:
    op, target = rule.op, rule.value
    if op == "exists":
        return lambda v: not _missing(v)
    if op == "missing":
        return _missing
    if op in ("eq", "ne"):
        key = canonical(target)
        if op == "eq":
            return lambda v: canonical(v) == key
        return lambda v: canonical(v) != key
    if op in ("in", "not_in"):
        keys = {canonical(t) for t in target}
        if op == "in":
            return lambda v: not _missing(v) and canonical(v) in keys
        return lambda v: _missing(v) or canonical(v) not in keys
    if op == "contains":
        return lambda v: (
            (isinstance(v, str) and str(target) in v)
            or (isinstance(v, list | tuple) and canonical(target) in {canonical(x) for x in v})
        )
    bound = float(target)
    compare: Callable[[float, float], bool] = {
        "gt": float.__gt__,
        "gte": float.__ge__,
        "lt": float.__lt__,
        "lte": float.__le__,
    }[op]

    def numeric(v: Any) -> bool:
        number = _number(v)
        return number is not None and compare(number, bound)

    return numeric


def _vectorized(rule: AttributeRule, column: np.ndarray) -> Mask | None:
    """A numpy answer for typed columns, or None to use the per-value path."""
    kind, op, target = column.dtype.kind, rule.op, rule.value
    if kind == "b":
        key = canonical(target) if op in ("eq", "ne") else None
        if op in ("eq", "ne") and key is not None and key[0] == "bool":
            hit = column == key[1]
            return hit if op == "eq" else ~hit
        if op == "exists":
            return np.ones(column.shape[0], dtype=bool)
        if op == "missing":
            return np.zeros(column.shape[0], dtype=bool)
        return None
    if kind in "iuf":
        present = ~np.isnan(column) if kind == "f" else np.ones(column.shape[0], dtype=bool)
        if op == "exists":
            return present
        if op == "missing":
            return ~present
        if op in ("gt", "gte", "lt", "lte"):
            bound = float(target)
            with np.errstate(invalid="ignore"):
                hit = {
                    "gt": column > bound,
                    "gte": column >= bound,
                    "lt": column < bound,
                    "lte": column <= bound,
                }[op]
            return np.asarray(hit & present)
        if op in ("eq", "ne", "in", "not_in"):
            targets = [target] if op in ("eq", "ne") else list(target)
            numbers = [k[1] for k in map(canonical, targets) if k is not None and k[0] == "num"]
            hit = np.isin(column, np.array(numbers, dtype=float)) if numbers else np.zeros(len(column), bool)
            return hit if op in ("eq", "in") else ~hit
        return None
    if kind == "U" and op in ("eq", "ne", "in", "not_in"):
        targets = [target] if op in ("eq", "ne") else list(target)
        keys = [canonical(t) for t in targets]
        if any(k is None or k[0] != "str" for k in keys):
            return None  # booleans and numbers spelled as text: per-value path
        # column values spelled "true"/"false" are booleans, never equal to a text target
        texts = np.array([k[1] for k in keys if k is not None])
        hit = np.isin(column, texts)
        return hit if op in ("eq", "in") else ~hit
    if kind == "U" and op == "exists":
        return np.ones(column.shape[0], dtype=bool)
    if kind == "U" and op == "missing":
        return np.zeros(column.shape[0], dtype=bool)
    return None


def evaluate_rule(rule: AttributeRule, column: np.ndarray) -> Mask:
    fast = _vectorized(rule, column)
    if fast is not None:
        return fast
    predicate = _predicate(rule)
    return np.fromiter((predicate(v) for v in column.tolist()), dtype=bool, count=column.shape[0])


def any_segment(segments: Mapping[int, np.ndarray], ids: Sequence[int], n: int) -> Mask:
    """Members of any of the segments (a KeyError when the caller did not give a mask: fail closed)."""
    out = np.zeros(n, dtype=bool)
    for segment_id in ids:
        mask = np.asarray(segments[segment_id], dtype=bool)
        if mask.shape != (n,):
            raise ValueError(f"segment {segment_id} mask has shape {mask.shape}, expected ({n},)")
        out |= mask
    return out
