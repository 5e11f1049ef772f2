"""Behaviour rules of segments (purchases over `Interaction` joined with `Item`) and the value
parsers every rule shares. See `campaigns.audience.rules` for the rule language."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from campaigns.errors import InputError
from models import Contact, Interaction, Item

Rule = dict[str, Any]
ORDER_OPS = ("lt", "le", "gt", "ge", "eq", "ne")

COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}
_ZERO_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


# ---------------------------------------------------------------------------------------------
# behaviour over interactions


def _purchases(spec: Rule, now: datetime, where: str, allowed: Iterable[str]) -> sa.Select[int]:
    """SELECT contact_id FROM purchase interactions narrowed by the spec's conditions."""
    unknown = set(spec) - set(allowed)
    if unknown:
        raise InputError(
            f"unexpected keys {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}", where=where
        )
    query = sa.select(Interaction.contact_id).where(Interaction.kind == "purchase")
    return _narrow(query, spec, now, where)


def _narrow(query: sa.Select[Any], spec: Rule, now: datetime, where: str) -> sa.Select[Any]:
    joined = False
    for key in ("category", "sku"):
        if key in spec:
            wanted = spec[key]
            wanted = [wanted] if isinstance(wanted, str) else wanted
            if not isinstance(wanted, list) or not wanted or not all(isinstance(w, str) for w in wanted):
                raise InputError(f"{key} takes text or a non-empty list of text", where=f"{where}.{key}")
            if not joined:
                query = query.join(Item, Item.id == Interaction.item_id)
                joined = True
            query = query.where(getattr(Item, key).in_(wanted))
    if "within_days" in spec:
        days = number(spec["within_days"], f"{where}.within_days", minimum=0)
        query = query.where(Interaction.occurred_at >= now - timedelta(days=days))
    if "since" in spec:
        query = query.where(Interaction.occurred_at >= moment(spec["since"], f"{where}.since"))
    if "before" in spec:
        query = query.where(Interaction.occurred_at < moment(spec["before"], f"{where}.before"))
    return query


def behaviour_rule(key: str, rule: Rule, now: datetime, where: str) -> ColumnElement[bool]:
    spec = rule[key]
    extra = set(rule) - {key, "bought_before"}
    if extra or ("bought_before" in rule and key != "no_purchase_since"):
        raise InputError(f"unexpected keys beside {key!r}: {sorted(set(rule) - {key})}", where=where)
    if not isinstance(spec, dict):
        raise InputError(f"{key!r} takes an object", where=where)
    if key == "purchased":
        query = _purchases(spec, now, where, ("category", "sku", "within_days", "since", "before"))
        return Contact.id.in_(query)
    if key == "no_purchase_since":
        return _no_purchase_since(spec, rule.get("bought_before", False), now, where)
    return _aggregate_rule(key, spec, now, where)


def _no_purchase_since(spec: Rule, bought_before: Any, now: datetime, where: str) -> ColumnElement[bool]:
    if set(spec) not in ({"days"}, {"date"}):
        raise InputError('no_purchase_since takes {"days": N} or {"date": "YYYY-MM-DD"}', where=where)
    if not isinstance(bought_before, bool):
        raise InputError("bought_before takes true or false", where=f"{where}.bought_before")
    if "days" in spec:
        cutoff = now - timedelta(days=number(spec["days"], f"{where}.days", minimum=0))
    else:
        cutoff = moment(spec["date"], f"{where}.date")
    purchase = sa.select(Interaction.contact_id).where(Interaction.kind == "purchase")
    recent = Contact.id.in_(purchase.where(Interaction.occurred_at >= cutoff))
    if not bought_before:
        return sa.not_(recent)
    earlier = Contact.id.in_(purchase.where(Interaction.occurred_at < cutoff))
    return sa.and_(earlier, sa.not_(recent))


def _aggregate_rule(key: str, spec: Rule, now: datetime, where: str) -> ColumnElement[bool]:
    allowed = {"op", "value", "within_days", "since", "before", "category", "sku"}
    unknown = set(spec) - allowed
    if unknown:
        raise InputError(
            f"unexpected keys {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}", where=where
        )
    op = spec.get("op", "ge")
    if op not in ORDER_OPS:
        raise InputError(f"op must be one of {', '.join(ORDER_OPS)}", where=f"{where}.op")
    if "value" not in spec:
        raise InputError(f"{key} needs a value", where=f"{where}.value")
    threshold = number(spec["value"], f"{where}.value")
    measure: ColumnElement[Any]
    if key == "purchase_count":
        order = sa.func.coalesce(Interaction.reference, sa.cast(Interaction.id, sa.String))
        measure = sa.func.count(sa.distinct(order))
        kinds: tuple[str, ...] = ("purchase",)
    else:
        signed = sa.case((Interaction.kind == "return", -Interaction.value), else_=Interaction.value)
        measure = sa.func.coalesce(sa.func.sum(signed), 0.0)
        kinds = ("purchase", "return")
    query = sa.select(Interaction.contact_id).where(Interaction.kind.in_(kinds))
    query = _narrow(query, spec, now, where).group_by(Interaction.contact_id)
    holds = COMPARE[op](measure, threshold)
    # Contacts with no interactions have a measure of 0: whether they match decides the shape.
    if _ZERO_COMPARE[op](0.0, threshold):
        return Contact.id.not_in(query.having(sa.not_(holds)))
    return Contact.id.in_(query.having(holds))


# ---------------------------------------------------------------------------------------------
# value parsing


def number(value: Any, where: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"expected a number, not {value!r}", where=where)
    if minimum is not None and value < minimum:
        raise InputError(f"expected a number >= {minimum:g}, not {value!r}", where=where)
    return float(value)


def moment(value: Any, where: str) -> datetime:
    """An ISO date or datetime; dates mean midnight UTC, naive datetimes are UTC."""
    if not isinstance(value, str):
        raise InputError(f"expected an ISO date like 2011-09-01, not {value!r}", where=where)
    try:
        if len(value.strip()) == 10:
            day = date.fromisoformat(value.strip())
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"expected an ISO date like 2011-09-01, not {value!r}", where=where) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
