"""Addresses: the one door every email address comes through, and what "the same address" means.

Pure: imports neither Flask nor SQLAlchemy. See `normalize_email`.
"""

from __future__ import annotations

import re
import unicodedata

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from campaigns.errors import InputError

MAX_EMAIL = 254  # RFC 5321 path limit minus the angle brackets
MAX_LOCAL = 64
# Top-level domains email-validator refuses (RFC 6761 special use; `test` is allowed, see below).
_TLD = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_SPECIAL_TLDS = frozenset(d for d in SPECIAL_USE_DOMAIN_NAMES if d != "test")

# The common case, already lower-case ASCII: a match implies every check below passes.
_FAST_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


def normalize_email(raw: str) -> str:
    """The one door every address comes through (API, UI, imports, sign-ups, seed lists): the
    address as stored and compared, or InputError saying why it is refused.

    Before anything else the text is normalised (NFKC, so a full-width `a@example.com`, U+FF41 and on,
    is `a@example.com`; zero-width and other invisible format characters removed), so two spellings of
    one address are one contact. The whole address is lower-cased, not only the domain: RFC 5321 lets
    a server treat local parts case-sensitively, but no mainstream mailbox provider does, and two
    contacts differing only in case are a duplicate far more often than two people. The address is
    then checked by `email-validator`. Internationalized domains are stored in their ASCII (IDNA)
    form so the same domain always compares equal; non-ASCII before the @ is refused, because
    mailramp does not send with SMTPUTF8 (docs/contacts.md).
    """
    if not isinstance(raw, str):
        raise InputError(f"an email address must be text, not {type(raw).__name__}", where="email")
    email = raw.strip()
    lowered = email.lower()
    fast = len(email) <= MAX_EMAIL and lowered.isascii() and _FAST_EMAIL.fullmatch(lowered)
    if fast and lowered.index("@") <= MAX_LOCAL and lowered.rpartition(".")[2] not in _SPECIAL_TLDS:
        return lowered
    return normalize_email_fully(raw)


def normalize_email_fully(raw: str) -> str:
    """`normalize_email` without its fast path for plain lower-case ASCII addresses."""
    email = _visible(unicodedata.normalize("NFKC", raw)).strip()
    if email.lower().startswith("mailto:"):
        email = email[len("mailto:") :]
    if not email:
        raise InputError("the email address is empty", where="email")
    if len(email) > MAX_EMAIL:
        raise InputError(f"the email address is longer than {MAX_EMAIL} characters", where="email")
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise InputError(f"not an email address (needs local@domain): {raw!r}", where="email")
    if len(local) > MAX_LOCAL:  # RFC 5321's limit, which email-validator no longer enforces
        raise InputError(f"the part before @ is longer than {MAX_LOCAL} characters: {raw!r}", where="email")
    if not local.isascii():
        raise InputError(
            f"internationalized addresses (non-ASCII before the @) are not accepted: {raw!r}", where="email"
        )
    domain = domain.rstrip(".")  # the root's dot: `example.com.` is `example.com`
    try:
        checked = validate_email(
            f"{local}@{domain}".lower(),
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            test_environment=True,  # the demo's and the tests' *.test domains
        )
    except EmailNotValidError as exc:
        raise InputError(f"not an email address ({exc}): {raw!r}", where="email") from None
    ascii_domain = checked.ascii_domain.lower()
    if not _TLD.match(ascii_domain.rpartition(".")[2]):  # no top-level domain has one letter or a digit
        raise InputError(f"not an email address (bad top-level domain): {raw!r}", where="email")
    return f"{checked.local_part.lower()}@{ascii_domain}"


def _visible(text: str) -> str:
    """Without format characters (Unicode category Cf: zero-width spaces and joiners, the byte
    order mark, soft hyphens, direction marks): invisible, so never part of an address."""
    if text.isascii():
        return text
    return "".join(c for c in text if unicodedata.category(c) != "Cf")
