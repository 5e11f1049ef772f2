"""One parametrized test fed by the golden file: buckets and arms at several exposures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from campaigns.rollout.assignment import ContactFrame, RolloutSpec, assign
from campaigns.rollout.bucketing import bucket, buckets

CASES: list[dict[str, Any]] = json.loads((Path(__file__).parent / "golden_buckets.json").read_text())["cases"]


def _id(case: dict[str, Any]) -> str:
    return f"{case['salt']!r}:{case['contact_id']}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_golden_case(case: dict[str, Any]) -> None:
    salt, contact_id = case["salt"], case["contact_id"]
    assert bucket(salt, contact_id) == case["bucket"]
    assert buckets(salt, np.array([contact_id], dtype=np.int64))[0] == case["bucket"]
    frame = ContactFrame(ids=np.array([contact_id], dtype=np.int64))
    for exposure, expected in case["arms"].items():
        spec = RolloutSpec(
            rollout_id=1,
            salt=salt,
            state="ramping",
            stage_kind="percent",
            exposure_bp=int(exposure),
            holdout_bp=case["holdout_bp"],
        )
        assert assign(spec, frame).arms[0] == expected, f"exposure {exposure}"


def test_golden_file_covers_every_arm() -> None:
    seen = {arm for case in CASES for arm in case["arms"].values()}
    assert seen == {"treatment", "control", "holdout"}
