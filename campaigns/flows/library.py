"""Ready-made flows: welcome series, abandoned cart, post-purchase cross-sell, win-back. Pure data: each
is a definition dict whose send steps name a template of the library by its key (`"template":
"welcome-1"`) instead of an id, and the templates themselves (sandboxed Jinja2, unsubscribe link in
the layout). `records.create_from_library` makes the templates a workspace lacks (by name) and the
draft flow; `definition()` is the step between: the dict with real template ids, for the schema.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

LAYOUT = (
    '<div style="font-family: sans-serif; max-width: 600px; margin: auto">{{ content }}'
    '<p style="color: #777; font-size: 12px">You get this email because you signed up with us. '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p></div>'
)
HELLO = "<p>Hello {{ contact.first_name or 'there' }},</p>"
PICKS = (
    HELLO + "<p>Picked for you:</p><ul>{% for item in recommendations %}"
    '<li><a href="{{ item.url }}">{{ item.name }}</a></li>{% endfor %}</ul>'
)


def _template(subject: str, body: str, ai_html: str = "") -> dict[str, str]:
    return {"subject": subject, "layout_html": LAYOUT, "control_html": HELLO + body, "ai_html": ai_html}


TEMPLATES: dict[str, tuple[str, dict[str, str]]] = {  # key: (template name, fields)
    "welcome-1": (
        "Flow: welcome 1",
        _template(
            "Welcome, {{ contact.first_name or 'friend' }}", "<p>Thanks for confirming. Glad you're here.</p>"
        ),
    ),
    "welcome-2": (
        "Flow: welcome 2",
        _template("How to get the most out of us", "<p>A few tips to get started.</p>"),
    ),
    "welcome-3": (
        "Flow: welcome 3",
        _template(
            "Our favourites, for you", '<p><a href="https://example.com/best">Our best sellers</a></p>'
        ),
    ),
    "cart-reminder": (
        "Flow: cart reminder",
        _template(
            "You left something in your cart",
            '<p><a href="https://example.com/cart">Back to your cart</a></p>',
        ),
    ),
    "cross-sell": (
        "Flow: cross-sell",
        _template(
            "Goes well with your last order",
            '<p><a href="https://example.com/new">See what is new</a></p>',
            ai_html=PICKS,
        ),
    ),
    "win-back-1": (
        "Flow: win-back",
        _template(
            "We miss you, {{ contact.first_name or 'friend' }}",
            '<p><a href="https://example.com">See what is new</a></p>',
        ),
    ),
    "win-back-2": (
        "Flow: win-back last chance",
        _template("Still want to hear from us?", "<p>If not, the link below stops these emails.</p>"),
    ),
}


@dataclass(frozen=True)
class ReadyFlow:
    key: str
    name: str
    summary: str
    definition: dict[str, Any] = field(hash=False)

    def templates(self) -> list[str]:
        """The library template keys its send steps use, in order."""
        return [s["template"] for s in self.definition["steps"] if s["type"] == "send"]


def _send(step_id: str, template: str, ai_content: bool = False) -> dict[str, Any]:
    return {"id": step_id, "type": "send", "template": template, "ai_content": ai_content}


READY: dict[str, ReadyFlow] = {
    f.key: f
    for f in (
        ReadyFlow(
            "welcome",
            "Welcome series",
            "On double opt-in confirmation: three emails over a week (now, after 3 days, after 7 days).",
            {
                "trigger": {"kind": "contact_confirmed"},
                "steps": [
                    _send("welcome", "welcome-1"),
                    {"id": "wait-3-days", "type": "wait", "days": 3},
                    _send("tips", "welcome-2"),
                    {"id": "wait-4-days", "type": "wait", "days": 4, "until_local_time": "10:00"},
                    _send("favourites", "welcome-3"),
                ],
                "re_entry": {"rule": "never"},
            },
        ),
        ReadyFlow(
            "abandoned_cart",
            "Abandoned cart",
            "On an added_to_cart event: wait 4 hours, then a reminder, unless they purchased meanwhile.",
            {
                "trigger": {"kind": "event", "name": "added_to_cart"},
                "steps": [
                    {"id": "grace", "type": "wait", "hours": 4},
                    _send("reminder", "cart-reminder"),
                ],
                "exit_conditions": [{"event": "purchase"}],
                "re_entry": {"rule": "after_days", "days": 7},
            },
        ),
        ReadyFlow(
            "post_purchase",
            "Post-purchase cross-sell",
            "On a purchase: wait 3 days, then the recommender's picks (AI content behind a rollout).",
            {
                "trigger": {"kind": "purchase"},
                "steps": [
                    {"id": "settle", "type": "wait", "days": 3, "until_local_time": "10:00"},
                    _send("cross-sell", "cross-sell", ai_content=True),
                ],
                "re_entry": {"rule": "after_days", "days": 30},
            },
        ),
        ReadyFlow(
            "win_back",
            "Win-back",
            "No open or click for 90 days: a we-miss-you email; if not opened within a week, a last one.",
            {
                "trigger": {"kind": "inactivity", "days": 90},
                "steps": [
                    _send("miss-you", "win-back-1"),
                    {"id": "wait-a-week", "type": "wait", "days": 7},
                    {
                        "id": "opened",
                        "type": "branch",
                        "condition": {"event": "opened"},
                        "then": "came-back",
                        "otherwise": "last-chance",
                    },
                    _send("last-chance", "win-back-2"),
                    {"id": "done", "type": "exit", "reason": "win-back finished"},
                    {"id": "came-back", "type": "exit", "reason": "opened the win-back email"},
                ],
                "re_entry": {"rule": "after_days", "days": 180},
            },
        ),
    )
}


def definition(
    key: str, template_ids: dict[str, int], from_email: str, from_name: str = ""
) -> dict[str, Any]:
    """The ready-made flow `key` as a definition for the schema: template keys become `template_ids`."""
    out = copy.deepcopy(READY[key].definition)
    for step in out["steps"]:
        if step["type"] == "send":
            step["template_id"] = template_ids[step.pop("template")]
            step["from_email"], step["from_name"] = from_email, from_name
    return out


def catalog_json() -> list[dict[str, Any]]:
    """What `GET /api/v1/flow-templates` lists: each ready-made flow, its templates by name."""
    return [
        {
            "key": f.key,
            "name": f.name,
            "summary": f.summary,
            "templates": [TEMPLATES[t][0] for t in f.templates()],
            "definition": f.definition,
        }
        for f in READY.values()
    ]
