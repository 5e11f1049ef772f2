"""The watch after 100% forecast by simulating its own detector, and the holdout sized for it."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from campaigns.decisions import decide
from campaigns.decisions.watch import WATCH_THETAS, watch_alpha
from campaigns.rollout.changes import create_rollout
from campaigns.rollout.plans import set_workspace_plan, workspace_plan
from campaigns.rollout.sizing import DEFAULT_BASELINES, Cadence, PlanInputs, arrival_share
from campaigns.rollout.watch_forecast import (
    WATCH_ALPHA,
    WATCH_HOLDOUTS,
    WATCH_RATIOS,
    default_holdout,
    watch_sends,
)
from models import Rollout
from tests.campaigns.decisions.test_decide import NOW, arm, snapshot
from tests.factories import add_campaign, add_contacts, add_template

UNSUB = 0.004


def audience(per_send: int, hours: float = 24.0, **kw: Any) -> PlanInputs:
    rates = {**DEFAULT_BASELINES, "unsubscribe_rate": UNSUB}
    return PlanInputs(Cadence("recurring", per_send, hours), baselines=rates, **kw)


def test_the_forecast_simulates_the_watch_with_its_own_alpha_and_ratios() -> None:
    assert math.isclose(watch_alpha(0.05, None, 5), WATCH_ALPHA) and WATCH_RATIOS == WATCH_THETAS
    small, big = audience(5000), audience(100_000)
    # more holdout, fewer sends; a bigger list, fewer sends; a bigger harm, fewer sends
    sends = [watch_sends(small, h) or 99 for h in WATCH_HOLDOUTS]
    assert sends == sorted(sends, reverse=True) and sends[0] > sends[-1]
    assert (watch_sends(big, 500) or 99) < (watch_sends(small, 500) or 99)
    assert (watch_sends(small, 500, theta=5.0) or 99) < (watch_sends(small, 500) or 99)
    # no holdout, or no unsubscribes at all: the watch cannot see it
    assert watch_sends(small, 0) is None and watch_sends(audience(0), 500) is None


def test_the_holdout_is_sized_so_the_watch_catches_a_tripling_within_3_sends() -> None:
    assert default_holdout(audience(100_000), 500) == 500  # a large list keeps 5%
    mid = default_holdout(audience(20_000), 500)
    assert mid > 500 and (watch_sends(audience(20_000), mid) or 99) <= 3
    assert (watch_sends(audience(20_000), mid - 500) or 99) > 3  # the smallest that does
    # 5,000 a day needs more than the 30% the planner once stopped at: up to 50% may be held out
    small = default_holdout(audience(5000), 500)
    assert 3000 < small <= 5000 and (watch_sends(audience(5000), small) or 99) <= 3
    assert (watch_sends(audience(5000), small - 500) or 99) > 3
    # 3,000 a week: even 50% would take more than 3 sends, so the default stays (and says so)
    assert default_holdout(audience(3000, 168.0), 500) == 500


def test_the_answer_does_not_depend_on_how_far_the_simulation_looks() -> None:
    """The holdout search asks "within 3 sends?", the forecast "how many sends?": both read the same
    streams (35% on 5,000 a day once said 3 sends to the one and 4 to the other)."""
    small = audience(5000)
    for holdout in WATCH_HOLDOUTS:
        full = watch_sends(small, holdout)
        for limit in (1, 2, 3, 5, 8):
            assert watch_sends(small, holdout, limit=limit) == (
                full if full is not None and full <= limit else None
            )


def test_the_simulation_agrees_with_the_watch_itself() -> None:
    """Streams of a tripling of unsubscribes after completion, through the real `decide()`: the
    forecast's send count is when about 90% have been rolled back, not much earlier or later."""
    inputs = audience(20_000, 24.0)
    holdout = 1000
    forecast = watch_sends(inputs, holdout)
    assert forecast is not None
    rng = np.random.default_rng(7)
    share = holdout / 10_000
    streams, looks = 200, forecast + 1
    rolled = np.full(streams, 99)
    for s in range(streams):
        final = [(rng.poisson(3 * UNSUB * 20_000 * (1 - share)), rng.poisson(UNSUB * 20_000 * share))
                 for _ in range(looks)]  # fmt: skip
        for k in range(looks):
            periods = []
            for j in range(k + 1):
                got = arrival_share(
                    inputs.unsubscribe_p50_hours, inputs.unsubscribe_window_hours, (k + 1 - j) * 24.0
                )
                t, c = (round(x * got) for x in final[j])
                periods.append((NOW - timedelta(days=looks - j), {
                    "treatment": arm(20_000 * (1 - share), unsubscribe=t),
                    "holdout": arm(20_000 * share, unsubscribe=c),
                }))  # fmt: skip
            verdict = decide(
                snapshot({}, stage_index=2, state="completed", holdout_bp=holdout, watched=tuple(periods))
            )
            if verdict.outcome == "rollback":
                rolled[s] = k + 1
                break
    assert np.mean(rolled <= forecast) >= 0.8
    if forecast > 1:
        assert np.mean(rolled <= forecast - 1) < 0.97


def test_a_rollout_made_without_a_holdout_gets_the_sized_one(session: Session) -> None:
    add_contacts(session, 20_000)
    template = add_template(session)
    daily = add_campaign(session, template.id, schedule={"kind": "recurring", "cron": "0 9 * * *"})
    sized = create_rollout(session, "sized", "owner@example.com")
    # a series of unknown cadence: weekly, 20,000 a send, the stated baselines
    assert sized.holdout_bp == default_holdout(PlanInputs(Cadence("series", 20_000, 168.0)), 500) > 500
    campaign = add_campaign(session, template.id, name="Daily AI", ai={"exposure_percent": 100},
                            schedule={"kind": "recurring", "cron": "0 9 * * *"})  # fmt: skip
    assert daily.id != campaign.id
    rollout = session.get(Rollout, campaign.rollout_id)
    stated = PlanInputs(Cadence("recurring", 20_000, 24.0))  # no history: the stated baselines
    assert rollout is not None and rollout.holdout_bp == default_holdout(stated, 500) > 500
    # what the marketer gives is kept, and so is an edited workspace default
    given = add_campaign(
        session, template.id, name="Given", ai={"exposure_percent": 100, "holdout_percent": 5}
    )
    assert session.get(Rollout, given.rollout_id).holdout_bp == 500  # type: ignore[union-attr]
    capped = add_campaign(session, template.id, name="Capped", ai={"exposure_percent": 95},
                          schedule={"kind": "recurring", "cron": "0 9 * * *"})  # fmt: skip
    assert session.get(Rollout, capped.rollout_id).holdout_bp == 500  # type: ignore[union-attr]
    set_workspace_plan(session, {**workspace_plan(session), "holdout_bp": 700}, "owner@example.com")
    edited = add_campaign(session, template.id, name="Edited", ai={"exposure_percent": 100},
                          schedule={"kind": "recurring", "cron": "0 9 * * *"})  # fmt: skip
    assert session.get(Rollout, edited.rollout_id).holdout_bp == 700  # type: ignore[union-attr]
