"""An OpenFeature provider: another Python service evaluates a rollout's flag for a contact and gets
the same arm as the send path (the same `spec_from_row` and `assign`, one contact at a time).

    from openfeature import api
    from campaigns.rollout.openfeature import RolloutProvider

    api.set_provider_and_wait(RolloutProvider.from_url(DATABASE_URL))  # not set_provider: see below
    client = api.get_client()
    ai_on = client.get_boolean_value("rollout-12", False, EvaluationContext("4711"))
    arm = client.get_string_value("rollout-12", "control", EvaluationContext("4711", {"plan": "pro"}))

Flag keys: ``rollout-<id>`` or a rollout's name. The targeting key is the contact id. Context
attributes are the contact's attributes (``country`` is its country, ``segments`` the list of segment
ids it belongs to); with no attributes the provider reads the contact and its segment memberships
from the database like the send path does, and so it does for segments when ``segments`` is absent.

Values: string -> the arm; boolean -> arm == "treatment" (send AI content); integer -> the bucket;
object -> {"arm", "bucket", "shadow", "forced", "stage_index", "model_version_id"}; float is a type
mismatch. A rollout's spec is cached for `spec_ttl` seconds (default 1 s, so a kill is seen within a
second). Fail closed: a broken rollout evaluates to control with reason ERROR; an unknown flag or a
missing or non-numeric targeting key is an OpenFeature error (the client then returns your default,
so pass "control" / False).

Register it with ``set_provider_and_wait``: plain ``set_provider`` initializes a provider on a
background thread, and until that thread has run the client answers every evaluation with your
default value (error PROVIDER_NOT_READY), which on a loaded machine can be the first evaluations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata
from sqlalchemy.orm import Session, sessionmaker

from campaigns.rollout.assignment import Assignment, ContactFrame, RolloutSpec, assign
from campaigns.rollout.service import contact_frame, load_spec, required_segment_ids, segment_masks
from models import Rollout

SEGMENTS_KEY = "segments"


class FlagError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class RolloutProvider(AbstractProvider):
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        spec_ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.session_factory = session_factory
        self.spec_ttl = spec_ttl
        self.clock = clock
        self._specs: dict[int, tuple[float, RolloutSpec]] = {}
        self._names: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, database_url: str, **kwargs: Any) -> RolloutProvider:
        from models.db import make_engine, make_session_factory

        return cls(make_session_factory(make_engine(database_url)), **kwargs)

    def get_metadata(self) -> Metadata:
        return Metadata(name="mailramp-rollouts")

    # -- evaluation ---------------------------------------------------------------------------------

    def _rollout_id(self, session: Session, flag_key: str) -> int:
        key = flag_key.strip()
        for prefix in ("rollout-", "rollout:"):
            if key.startswith(prefix) and key[len(prefix) :].isdigit():
                return int(key[len(prefix) :])
        if key.isdigit():
            return int(key)
        if key not in self._names:
            found = session.scalar(sa.select(Rollout.id).where(Rollout.name == key))
            if found is None:
                raise FlagError(ErrorCode.FLAG_NOT_FOUND, f"no rollout named {key!r}")
            self._names[key] = int(found)
        return self._names[key]

    def _spec(self, session: Session, rollout_id: int) -> RolloutSpec:
        now = self.clock()
        with self._lock:
            cached = self._specs.get(rollout_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        if session.scalar(sa.select(Rollout.id).where(Rollout.id == rollout_id)) is None:
            raise FlagError(ErrorCode.FLAG_NOT_FOUND, f"rollout {rollout_id} does not exist")
        spec = load_spec(session, rollout_id)
        with self._lock:
            self._specs[rollout_id] = (now + self.spec_ttl, spec)
        return spec

    def _frame(
        self, session: Session, spec: RolloutSpec, contact_id: int, context: EvaluationContext
    ) -> ContactFrame:
        given = dict(context.attributes or {})
        segment_list = given.pop(SEGMENTS_KEY, None)
        if not given:
            frame = contact_frame(session, spec, [contact_id])
        else:
            country = given.get("country")
            frame = ContactFrame.from_records(
                [contact_id],
                [given],
                [country if isinstance(country, str) else None],
                {},
                names=spec.targeting.attribute_names(),
            )
        if segment_list is None:
            segments = frame.segments or segment_masks(session, spec, [contact_id])
        else:
            if not isinstance(segment_list, Sequence) or isinstance(segment_list, str):
                raise FlagError(ErrorCode.INVALID_CONTEXT, "'segments' must be a list of segment ids")
            if not all(isinstance(s, int) and not isinstance(s, bool) for s in segment_list):
                raise FlagError(ErrorCode.INVALID_CONTEXT, "'segments' must be a list of segment ids")
            member_of = set(segment_list)
            segments = {sid: np.array([sid in member_of]) for sid in required_segment_ids(spec)}
        return ContactFrame(
            ids=frame.ids, attributes=frame.attributes, country=frame.country, segments=segments
        )

    def evaluate(self, flag_key: str, context: EvaluationContext | None) -> tuple[RolloutSpec, Assignment]:
        """The spec and the one-contact assignment; raises FlagError for OpenFeature errors."""
        context = context or EvaluationContext()
        key = (context.targeting_key or "").strip()
        if not key:
            raise FlagError(ErrorCode.TARGETING_KEY_MISSING, "the targeting key must be the contact id")
        if not key.lstrip("-").isdigit():
            raise FlagError(ErrorCode.INVALID_CONTEXT, f"the targeting key must be a contact id, got {key!r}")
        with self.session_factory() as session:
            spec = self._spec(session, self._rollout_id(session, flag_key))
            if spec.fail_closed:
                frame = ContactFrame(ids=np.array([int(key)], dtype=np.int64))
            else:
                frame = self._frame(session, spec, int(key), context)
        return spec, assign(spec, frame)

    def _details(
        self,
        flag_key: str,
        context: EvaluationContext | None,
        convert: Callable[[str, RolloutSpec, Assignment], Any],
    ) -> FlagResolutionDetails[Any]:
        try:
            spec, result = self.evaluate(flag_key, context)
        except FlagError as exc:
            return FlagResolutionDetails(
                value=None, error_code=exc.code, error_message=str(exc), reason=Reason.ERROR
            )
        arm = str(result.arms[0])
        if result.failed or spec.failed:
            reason, message = Reason.ERROR, result.failed or spec.failed
        elif spec.killed or spec.state in ("draft", "rolled_back"):
            reason, message = Reason.DISABLED, None
        elif bool(result.forced[0]) or arm == "excluded":
            reason, message = Reason.TARGETING_MATCH, None
        else:
            reason, message = Reason.SPLIT, None
        return FlagResolutionDetails(
            value=convert(arm, spec, result),
            reason=reason,
            error_message=message,
            variant=arm,
            flag_metadata={
                "rollout_id": spec.rollout_id,
                "bucket": int(result.buckets[0]),
                "stage_index": spec.stage_index,
                "state": spec.state,
                "shadow": bool(result.shadow[0]),
            },
        )

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._details(flag_key, evaluation_context, lambda arm, _s, _r: arm)

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._details(flag_key, evaluation_context, lambda arm, _s, _r: arm == "treatment")

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._details(flag_key, evaluation_context, lambda _a, _s, r: int(r.buckets[0]))

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return FlagResolutionDetails(
            value=default_value,
            error_code=ErrorCode.TYPE_MISMATCH,
            error_message="rollout flags are strings (the arm), booleans, integers (the bucket) or objects",
            reason=Reason.ERROR,
        )

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        def convert(arm: str, spec: RolloutSpec, result: Assignment) -> dict[str, Any]:
            return {
                "arm": arm,
                "bucket": int(result.buckets[0]),
                "shadow": bool(result.shadow[0]),
                "forced": bool(result.forced[0]),
                "stage_index": spec.stage_index,
                "model_version_id": spec.model_version_id,
            }

        return self._details(flag_key, evaluation_context, convert)
