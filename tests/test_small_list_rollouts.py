"""Issue 20's small-list target, end to end: through the README's campaign path with 3,000 and with
6,000 contacts on weekly sends (tests/small_list_path.py: the API, the rq worker, the SMTP server, the
tracking stream and the ingest worker, the periodic evaluator, under the product's simulated clock).

- No effect: at creation the forecast's words (in the POST /campaigns answer and on the rollout) say
  what the plan can and cannot learn on this list and when it reaches everyone; after three weekly
  sends the rollout has either advanced a stage, or it holds with a reason that names the blocking
  gate and how many more sends it needs, as the forecast said, and nothing rolled it back.
- AI content that makes its recipients unsubscribe three times as often (0.9% against 0.3%): rolled
  back within three weekly sends, the decision naming unsubscribes (at 3,000 contacts with a thin
  margin: see the comment above the test).

The simulated recipients act in exactly the stated shares, drawn with a seed (tests/small_list_path.
who_acts), so the outcome rests on the effect and the statistics' margin. The rollout's salt is fixed
(``small-lists-<contacts>-0``) so that every run assigns the same contacts; bench/small_lists.py keeps
random salts.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from campaigns.rollout import changes
from campaigns.runtime import Runtime
from tests.conftest import SmtpSink
from tests.small_list_path import Run, run_weeks

SIZES = (3000, 6000)
WEEKS = 3  # weekly sends: "within 3 sends" for the harm, and three for the no-effect rollout
AI = {"holdout_percent": 5}  # the default plan, sized by the planner; the holdout stated explicitly


def _run(
    app: Any,
    make_api_client: Any,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
    contacts: int,
    harmful: bool,
    seed: int,
    weeks: int = WEEKS,
) -> Run:
    rt: Runtime = app.extensions["mailramp"]
    monkeypatch.setattr(changes, "new_salt", lambda: f"small-lists-{contacts}-0")
    # the local sink takes everything: the receiving domain's throttle (100 messages a second for
    # example.com) would only make the test wait; deliverability is not what this test is about
    rt.settings = dataclasses.replace(rt.settings, throttle={"enabled": False})
    api = make_api_client("marketer", "mia@example.com")

    def clear_sink() -> None:  # thousands of parsed messages a week: keep the count, not the messages
        counted.append(len(smtp_sink.messages))
        smtp_sink.messages.clear()

    counted: list[int] = []
    run = run_weeks(api, rt, contacts=contacts, weeks=weeks, harmful=harmful, seed=seed, ai=AI,
                    after_send=clear_sink)  # fmt: skip
    sent = [sum(arms.values()) for arms in run.sent_per_week]
    assert counted == sent, (counted, sent)  # every send reached the SMTP server, once
    assert sent[0] == contacts  # the first week reaches everyone; later weeks everyone not unsubscribed
    assert all(contacts * 0.97 <= n <= contacts for n in sent[1:]), sent
    return run


def _creation_words(run: Run) -> tuple[dict[str, Any], str]:
    """The forecast the marketer sees before the first send: the API's answer and the rollout's page
    say the same words."""
    forecast = run.created["rollout_forecast"]
    words = forecast["words"]
    assert run.rollout_at_creation["forecast"]["words"] == words
    assert run.rollout_at_creation["holdout_bp"] == 500
    assert words.startswith(f"on {run.contacts:,} contacts a week this rollout "), words
    # what it can learn about unsubscribes, and what it can or cannot about purchases, in words
    assert re.search(r"can catch a \w+ of unsubscribes within \d+ weekly sends", words), words
    assert re.search(r"(can|cannot) tell a 20% (drop|change) in conversions", words), words
    return forecast, words


@pytest.mark.parametrize("contacts", SIZES)
def test_no_effect_moves_or_says_at_creation_why_it_cannot(
    app: Any, make_api_client: Any, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch, contacts: int
) -> None:
    run = _run(app, make_api_client, smtp_sink, monkeypatch, contacts, harmful=False, seed=contacts)
    forecast, words = _creation_words(run)
    assert len(run.looks) == WEEKS * 7, [(look.week, look.state, look.reasons) for look in run.looks[-2:]]
    assert {look.state for look in run.looks} <= {"ramping"}  # never rolled back nor paused on no effect
    final = run.final
    if final.stage_index > 0:  # it moved
        assert run.advanced_after() is not None
        return
    # it did not move: the forecast said so at creation, in words ...
    first = forecast["stages"][0]
    assert first["sends"] is None or first["sends"] > WEEKS, forecast["stages"]
    to_everyone = forecast["sends_to_everyone"]
    assert (to_everyone is None and "does not reach everyone" in words) or (
        to_everyone > WEEKS and f"reaches everyone after about {to_everyone} weekly sends" in words
    ), words
    # ... and the hold names the blocking gate and how many more sends it needs, as the forecast said
    assert final.outcome == "hold"
    gate = next(b for b in final.blocking if b["arm"] == "treatment")
    stage_name = run.rollout_at_creation["stages"][0]["name"]
    assert gate["gate"] == f"the {stage_name} stage's gate" and gate["needs"] == first["gate_recipients"]
    more = gate["more_sends"]
    assert f"needs {gate['missing']:,} more matured treatment recipients" in final.reasons[0]
    assert f"about {more} more weekly sends at this stage" in final.reasons[0]
    if first["sends"] is not None:  # the sends done plus the sends it still needs: the forecast's
        assert abs(WEEKS + more - first["sends"]) <= max(2, 0.1 * first["sends"]), (more, first)


# With exactly 0.9% of about 1,500 AI-content recipients a send against 0.3% of 1,500
# (tests/small_list_path.who_acts), the unsubscribe guardrail's rate-ratio test (alpha 0.0038: log
# threshold 5.57; a rise mixed over x1.5, x2 and x3) has log e-value 5.89 after three sends (40
# against 14); at 6,000, 8.61 after two sends and 13.2 after three. The margin at 3,000 is thin: with
# recipients drawn independently (real noise) about 57% are caught within three sends and 78% within
# four (bench/small_lists.py measures it end to end); what a list of 3,000 can promise is in the
# forecast's words, and this test checks the expected case.
@pytest.mark.parametrize("contacts", SIZES)
def test_triple_unsubscribes_is_rolled_back_within_three_sends(
    app: Any, make_api_client: Any, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch, contacts: int
) -> None:
    run = _run(app, make_api_client, smtp_sink, monkeypatch, contacts, harmful=True, seed=contacts + 1)
    _creation_words(run)
    after = run.rolled_back_after()
    assert after is not None and after <= WEEKS, [
        (look.week, look.state, look.reasons) for look in run.looks[-2:]
    ]
    assert run.final.outcome == "rollback"
    assert "unsubscribe_rate is significantly worse" in run.final.reasons[0], run.final.reasons
