"""Every template feature is bounded in memory, format strings included: a template that would build a
huge value is refused where the value would be made, in the web process (saving a template) and in
the worker (rendering for a contact) alike, and the process stays under 600 MB."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from campaigns.content.render import compile_template, render, validate_template
from campaigns.content.render_limits import TemplateLimitError
from campaigns.errors import InputError

BOMBS = [
    "{{ '%0999999999d'|format(1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:{}}'.format(1, '999999999') }}",
    "{{ '{0:>{1}}'.format(1, 99999999) }}",
    "{{ '{a:>999999999}'.format_map({'a': 1}) }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '%.999999999f' % 1.0 }}",
    "{{ '%(a)s' * 100 % {'a': 'x' * 100000} }}",
    "{{ '{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}'.format('x' * 1000000) }}",
    "{% set s = 'x' * 2000000 %}{{ [s] * 1000 }}",
    "{% set s = 'x' * 1000000 %}{{ s.replace('', s) }}",
    "{% set s = 'x' * 1000000 %}{{ s|replace('', s) }}",
    "{% set s = 'x' * 1000000 %}{{ range(100000)|join(s) }}",
    "{% set s = 'x' * 1000000 %}{{ s.join(range(100000)|list) }}",
    "{% set s = 'x' * 1000000 %}{{ s ~ s ~ s ~ s }}",
    "{% set ns = namespace(s='x' * 1000000) %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set t = '\\t' * 1000000 %}{{ t.expandtabs(1000) }}",
    "{% set s = 'a\\n' * 500000 %}{{ s|indent('x' * 1000) }}",
    "{% set s = 'a' * 1000000 %}{{ s|wordwrap(1, True, 'x' * 1000, True) }}",
]


@pytest.mark.parametrize("bomb", BOMBS)
def test_saving_a_template_that_builds_a_huge_value_is_refused(bomb: str) -> None:
    with pytest.raises(InputError) as info:
        validate_template("Hi", "{{ content }}", bomb, "")
    assert info.value.where == "control_html"
    assert "not allowed in a template" in info.value.message


def test_a_format_width_from_a_contact_is_refused_when_rendering_for_that_contact() -> None:
    """Valid for the sample contact, a bomb for one: the worker's render refuses it (and the send
    path fails that one message, campaigns.sending.prepare)."""
    control = "{{ ('%0' ~ contact.attributes.get('w', 1) ~ 'd')|format(7) }}{{ '{:>{}}'.format(1, contact.attributes.get('w', 1)) }}"
    compiled = validate_template("Hi", "{{ content }}", control, "")
    contact: dict[str, Any] = {"name": "A", "attributes": {"w": 3}}
    assert render(compiled, ai=False, contact=contact, recommendations=[]).html == "007  1"
    with pytest.raises(TemplateLimitError):
        render(compiled, ai=False, contact={"attributes": {"w": 999999999}}, recommendations=[])
    with pytest.raises(TemplateLimitError):
        render(compiled, ai=False, contact={"attributes": {"w": "999999999"}}, recommendations=[])


def test_ordinary_format_strings_still_work() -> None:
    compiled = compile_template(
        "{{ '%s'|format(contact.name) }}",
        "{{ content }}",
        "{{ '%05.2f'|format(3.14159) }} {{ '{:>6}|{:,}'.format('ok', 1234567) }} {{ '%(n)s!' % {'n': 'hi'} }}"
        " {{ ['a', 'b']|join(', ') }} {{ 'a-b'.replace('-', '+') }} {{ 'x' ~ 'y' }}",
        "",
    )
    out = render(compiled, ai=False, contact={"name": "Ann"}, recommendations=[])
    assert (out.subject, out.html) == ("Ann", "03.14     ok|1,234,567 hi! a, b a+b xy")


_CHILD = """
import json, sys
from campaigns.content.render import validate_template
refused = 0
for bomb in json.loads(sys.argv[1]):
    try:
        validate_template("Hi", "{{ content }}", bomb, "")
    except Exception:
        refused += 1
# VmHWM is this process's own peak: getrusage's ru_maxrss keeps the forking parent's across exec
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"refused": refused, "peak_mb": peak_kb / 1024}))
"""


def test_every_bomb_is_refused_with_the_process_under_600_mb() -> None:
    """In a process of its own, so the peak is this render's and no other test's."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(BOMBS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["refused"] == len(BOMBS)
    assert result["peak_mb"] < 600
