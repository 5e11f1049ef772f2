"""The glossary: the words the rollout page and its decisions use, explained for a marketer."""

from __future__ import annotations

from flask import render_template

from app.auth import require_role
from app.ui.blueprint import ui
from models import Role

TERMS: tuple[tuple[str, str, str], ...] = (
    (
        "rollout",
        "Rollout",
        "Releasing AI content step by step: first to a few contacts, then to more, while "
        "comparing them with contacts who get the usual (control) content.",
    ),
    (
        "stage",
        "Stage",
        "One step of a rollout, such as 5% of the audience getting AI content. A stage ends when "
        "enough evidence says the AI content does no harm.",
    ),
    (
        "treatment",
        "Treatment and control",
        "Treatment contacts get AI content; control contacts get the usual "
        "content. Who is in which group is decided by chance, once, so the groups are alike.",
    ),
    (
        "holdout",
        "Holdout",
        "A small share of contacts (5% by default) who never get AI content, not even after "
        "the rollout completes. They are the yardstick that keeps the AI content honest after 100%.",
    ),
    (
        "matured",
        "Matured",
        "A contact's results are in: enough time has passed since the send for purchases, "
        "clicks or unsubscribes to happen (for example three days for purchases). Only matured contacts count "
        "towards a stage's evidence, so a wave sent a minute ago never looks harmless.",
    ),
    (
        "always-valid",
        "Always valid",
        "The statistics may be looked at after every wave without raising the "
        "chance of a false alarm: each decision holds however often anyone looks. Ordinary tests need a fixed "
        "sample size decided in advance; these do not.",
    ),
    (
        "lift",
        "Lift and its interval",
        "How much better (or worse) the AI content does than the control content, "
        "in percent: +10% means 10% more purchases. The interval in brackets is the range the true lift lies in, "
        "given the evidence so far; it never goes below -100% (no fewer than zero purchases). Worse means the "
        "whole interval is below 0.",
    ),
    (
        "guardrail",
        "Guardrail",
        "Something the AI content must not make worse, whatever else it improves: "
        "unsubscribes, spam complaints, bounces, send errors and clicks. A guardrail that fails rolls the AI "
        "content back, during the rollout and after it completed.",
    ),
    (
        "srm",
        "Sample-ratio mismatch (SRM)",
        "The groups are not the sizes the plan set (say 5% treatment but 9% "
        "of the recipients got AI content). Something is wrong with how contacts are assigned, so no result can be "
        "trusted: the rollout pauses until someone looks.",
    ),
    (
        "power",
        'Power and "completed without evidence"',
        "A rollout completes only when its results could have "
        "shown the harm that matters (a 20% drop in the primary metric, twice as many unsubscribes or complaints, "
        "20% fewer clicks). When they could not, completing needs an approver and is recorded as completed "
        "without evidence.",
    ),
    (
        "rollback",
        "Rollback",
        "Everyone gets the control content again. It happens on its own when the AI content "
        "does harm, and alerts whoever listens (webhooks, Slack, PagerDuty).",
    ),
    (
        "segment-exclusion",
        "Excluded segment",
        "A group of contacts (a country, say) where the AI content does "
        "harm while the rest is fine: that group goes back to the control content and the rollout goes on.",
    ),
)


@ui.route("/glossary")
@require_role(Role.viewer)
def glossary() -> str:
    return render_template("ui/glossary.html", terms=TERMS)
