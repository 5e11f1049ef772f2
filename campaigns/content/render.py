"""Sandboxed templates: compiled once per campaign, validated when saved, rendered per contact.

A template is a layout (which must print `{{ content }}`) around two blocks: the control block and
the AI block, which loops over `recommendations`. Everything runs in Jinja2's immutable sandbox with
autoescaping, so a template can neither reach Python internals nor inject markup through data.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Template as JinjaTemplate
from jinja2 import TemplateSyntaxError, Undefined
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup

from campaigns.content.render_limits import (
    WATCHDOG,
    BoundedCodeGenerator,
    bounded_str_format,
    check_args,
    check_binop,
    check_result,
    check_str_method,
    guarded_filter,
    joined,
    sized,
)
from campaigns.errors import InputError, all_at_once
from campaigns.runtime import current_settings
from campaigns.sending.headers import check_text

FIELDS = ("subject", "layout_html", "control_html", "ai_html")


def _max_value() -> int:
    return current_settings().template_max_output


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, refusing to build any value past TEMPLATE_MAX_OUTPUT (render_limits)."""

    intercepted_binops = frozenset({"*", "+", "%", "**"})
    code_generator_class = BoundedCodeGenerator  # `a ~ b` checked too

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: guarded_filter(_max_value, name, f) for name, f in self.filters.items()}

    def checked_concat(self, value: Any) -> Any:
        return check_result(_max_value(), value)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` and `format_map` through a formatter that checks every field's spec and the
        running size (render_limits.bounded_str_format), wherever the method is reached."""
        if super().wrap_str_format(value) is None:
            return None
        return bounded_str_format(self, value, _max_value())

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(_max_value(), operator, left, right)
        return check_result(_max_value(), super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_args(_max_value(), list(args) + list(kwargs.values()))
        if args and getattr(__obj, "__name__", "") == "join":
            args = (sized(args[0]), *args[1:])
        check_str_method(_max_value(), __obj, args, kwargs)
        return check_result(_max_value(), super().call(__context, __obj, *args, **kwargs))


_html_env = BoundedSandbox(autoescape=True, undefined=Undefined)
_text_env = BoundedSandbox(autoescape=False, undefined=Undefined)


@dataclass(frozen=True)
class CompiledTemplate:
    subject: JinjaTemplate
    layout: JinjaTemplate
    control: JinjaTemplate
    ai: JinjaTemplate


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str


def _compile(field: str, source: str) -> JinjaTemplate:
    env = _text_env if field == "subject" else _html_env
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise InputError(
            f"template syntax error: {exc.message}", where=f"{field}, line {exc.lineno}"
        ) from exc


def compile_template(subject: str, layout_html: str, control_html: str, ai_html: str) -> CompiledTemplate:
    return CompiledTemplate(
        subject=_compile("subject", subject),
        layout=_compile("layout_html", layout_html),
        control=_compile("control_html", control_html),
        ai=_compile("ai_html", ai_html),
    )


SAMPLE_CONTACT = {
    "id": 0,
    "email": "sample@example.com",
    "name": "Sample Contact",
    "first_name": "Sample",
    "country": "United Kingdom",
    "timezone": "Europe/London",
    "attributes": {},
}
SAMPLE_RECOMMENDATIONS = [
    {
        "item_id": i,
        "sku": f"SKU{i}",
        "name": f"Sample item {i}",
        "url": f"https://shop.example/items/SKU{i}",
        "price": 9.99 + i,
        "image_url": "",
        "category": "sample",
        "reason": "a sample recommendation",
    }
    for i in range(1, 4)
]


def template_problems(subject: str, layout_html: str, control_html: str, ai_html: str) -> list[InputError]:
    """Every problem of the four parts at once (each compiled on its own; the sample render in both
    arms once they all compile), each naming its field and line."""
    problems: list[InputError] = []
    compiled: dict[str, JinjaTemplate] = {}
    sources = {
        "subject": subject,
        "layout_html": layout_html,
        "control_html": control_html,
        "ai_html": ai_html,
    }
    for field, source in sources.items():
        if field == "subject" and not source.strip():
            problems.append(InputError("a subject is required", where="subject"))
            continue
        if field == "subject":
            try:
                check_text(source, "subject")  # a header: no line breaks or control characters
            except InputError as exc:
                problems.append(exc)
                continue
        if field == "layout_html" and not re.search(r"{{-?\s*content\b", source):
            problems.append(
                InputError(
                    "the layout must print {{ content }} where the control or AI block goes", "layout_html"
                )
            )
            continue
        try:
            compiled[field] = _compile(field, source)
        except InputError as exc:
            problems.append(exc)
    if problems:
        return problems
    template = CompiledTemplate(
        subject=compiled["subject"],
        layout=compiled["layout_html"],
        control=compiled["control_html"],
        ai=compiled["ai_html"],
    )
    for ai in (False, True):
        try:
            render(template, ai=ai, contact=SAMPLE_CONTACT, recommendations=SAMPLE_RECOMMENDATIONS)
        except SecurityError as exc:
            problems.append(
                InputError(f"not allowed in a template: {exc}", where="ai_html" if ai else "control_html")
            )
        except Exception as exc:
            where = _error_line(exc, "ai_html" if ai else "control_html")
            problems.append(InputError(f"the template fails when rendered: {exc}", where=where))
    return problems


def validate_template(subject: str, layout_html: str, control_html: str, ai_html: str) -> CompiledTemplate:
    """Compile, check the layout has a content slot, and render a sample in both arms.

    Raises InputError naming the field and line of the first problem (all of them in `details`).
    """
    problems = template_problems(subject, layout_html, control_html, ai_html)
    if problems:
        raise all_at_once(problems)
    return compile_template(subject, layout_html, control_html, ai_html)


def _error_line(exc: BaseException, field: str) -> str:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{field}, line {line}" if line else field


def render(
    compiled: CompiledTemplate,
    *,
    ai: bool,
    contact: dict[str, Any],
    recommendations: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> Rendered:
    """Render one email. `ai` picks the AI block; errors propagate (the caller falls back).
    Past TEMPLATE_MAX_OUTPUT characters or TEMPLATE_RENDER_SECONDS it raises TemplateLimitError."""
    settings = current_settings()
    limit = settings.template_max_output
    context = {"contact": contact, "recommendations": recommendations, **(extra or {})}
    block = compiled.ai if ai else compiled.control
    with WATCHDOG.deadline(settings.template_render_seconds):
        content = Markup(_render(block, context, limit))
        html = _render(compiled.layout, {**context, "content": content}, limit)
        subject = " ".join(_render(compiled.subject, context, limit).split())
    return Rendered(subject=subject, html=html)


def render_subject(source: str, context: dict[str, Any]) -> str:
    """One subject line on its own (compiled here, within the render limits)."""
    settings = current_settings()
    with WATCHDOG.deadline(settings.template_render_seconds):
        return " ".join(_render(_compile("subject", source), context, settings.template_max_output).split())


def _render(template: JinjaTemplate, context: dict[str, Any], limit: int) -> str:
    """Template.render, but refusing output past `limit` characters as it is produced."""
    try:
        return joined(template.root_render_func(_new_context(template, context)), limit)
    except Exception:
        return template.environment.handle_exception()


_flat_globals: weakref.WeakKeyDictionary[JinjaTemplate, dict[str, Any]] = weakref.WeakKeyDictionary()


def _new_context(template: JinjaTemplate, context: dict[str, Any]) -> Context:
    """`template.new_context(context)`, without copying the template's globals (a ChainMap, read
    key by key in Python) on every render: they are flattened once per compiled template."""
    flat = _flat_globals.get(template)
    if flat is None:
        flat = _flat_globals[template] = dict(template.globals)
    env = template.environment
    return env.context_class(env, {**flat, **context}, template.name, template.blocks, globals=flat)


def contact_context(
    contact_id: int, email: str, name: str, country: str, timezone: str, attributes: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": contact_id,
        "email": email,
        "name": name,
        "first_name": name.split()[0] if name.strip() else "",
        "country": country,
        "timezone": timezone,
        "attributes": attributes or {},
    }
