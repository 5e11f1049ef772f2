"""The one door every header value built from data passes: names, subjects, From and Reply-To,
list ids and custom headers.

Two halves, defence in depth:
- `check_text` refuses at the door (API, UI, imports): a value holding CR, LF or any other control
  or line-separator character is an InputError naming the field.
- `text`, `address` and `line` neutralise in the builder: whatever reached the database anyway (an
  old row, a template's output) has every such character replaced by a space, non-ASCII is encoded
  (RFC 2047) and folded with CRLF, so no value can ever start a header of its own.

Pure: no Flask, no database.
"""

from __future__ import annotations

import re
from email.header import Header
from email.utils import formataddr

from campaigns.errors import InputError

# C0 controls (TAB included), DEL, C1 controls, and the Unicode line and paragraph separators:
# mail software that treats any of them as a line end must never see one inside a header value.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UNSAFE_RUNS = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]+")
# RFC 5322 field name: printable ASCII but the colon
_FIELD_NAME = re.compile(r"^[!-9;-~]{1,76}$")
# An address as it goes into a header: no whitespace, control, quote, angle bracket or comma
_ADDRESS = re.compile(r"^[^\s\x00-\x1f\x7f-\x9f\u2028\u2029<>,;\"()\\]+@[^\s\x00-\x1f\x7f-\x9f<>,;\"()\\@]+$")
MAX_ASCII = 900  # a header line must stay under 998 characters; longer values are encoded and folded


class HeaderError(ValueError):
    """A value the builder cannot put in a header safely (an address with a line break in it)."""


def unsafe_character(value: str) -> str | None:
    """The first forbidden character of `value` as `U+000D`, or None."""
    match = _UNSAFE.search(value)
    return f"U+{ord(match.group(0)):04X}" if match else None


def check_text(value: str, where: str) -> str:
    """At the door: the value as given, or an InputError naming the field."""
    found = unsafe_character(value)
    if found is not None:
        raise InputError(f"must not contain line breaks or control characters (found {found})", where=where)
    return value


def clean(value: str) -> str:
    """Every run of control characters and whitespace becomes one space."""
    return _UNSAFE_RUNS.sub(" ", value).strip()


def text(value: str, name: str = "Subject") -> str:
    """An unstructured header value (Subject, a custom header): cleaned, then as it is when it is
    short ASCII, else RFC 2047 encoded words folded with CRLF."""
    value = clean(value)
    if value.isascii() and len(value) <= MAX_ASCII:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def check_address(email: str) -> str:
    if not _ADDRESS.match(email):
        raise HeaderError(f"not an address a header can hold: {email!r}")
    return email


def address(name: str, email: str) -> str:
    """`Name <address>` for From, To and Reply-To: the name cleaned and encoded, the address refused
    (HeaderError) if it holds anything that could break out of the header."""
    return formataddr((clean(name), check_address(email)))


def line(name: str, value: str) -> str:
    """A whole custom header line `Name: value`; the name must be a plain field name."""
    if not _FIELD_NAME.match(name):
        raise HeaderError(f"not a header name: {name!r}")
    return f"{name}: {text(value, name)}"
