"""Double opt-in: a signup makes a pending contact and sends a confirmation email with a signed,
expiring link; only the link's confirmation grants consent (and so makes the contact sendable).

With double opt-in off (per signup form, or the workspace default for API signups) consent is granted
at once. Pending contacts have `consent = False`, so the planner and the send path never mail them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy.orm import Session

from campaigns.contacts.records import check_attributes, clean_text, normalize_email
from campaigns.errors import InputError, NotFound
from campaigns.privacy import consent
from campaigns.privacy.erasure import suppress_again
from campaigns.runtime import Settings
from campaigns.sending.builders import notice_builder
from campaigns.sending.delivery import SmtpConfig, SmtpTransport
from campaigns.sending.message import OutgoingMessage
from models import ConsentRecord, Contact, SignupForm, Suppression, utcnow

log = logging.getLogger(__name__)
CONFIRM_SALT = "mailramp-confirm"
FORM_SALT = "mailramp-signup-form"
DEFAULT_CONFIRM_TEXT = (
    "Hello,\n\nsomeone (we hope you) asked to receive {{ form }} at this address.\n"
    "Please confirm by opening this link within {{ hours }} hours:\n\n{{ confirm_url }}\n\n"
    "If it was not you, ignore this message: you will not hear from us again.\n"
)
_text_env = ImmutableSandboxedEnvironment(autoescape=False)


@dataclass(frozen=True)
class Signup:
    email: str
    name: str = ""
    wording: str = ""
    ip: str = ""
    user_agent: str = ""
    attributes: dict[str, Any] | None = None


@dataclass(frozen=True)
class SignupResult:
    contact_id: int
    state: str  # pending | granted | already (consent was already granted: nothing sent)
    confirm_url: str = ""


def _email_digest(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def confirmation_token(secret_key: str, contact_id: int, email: str) -> str:
    """Signed and timestamped; bound to the address, so changing the address voids the link."""
    return URLSafeTimedSerializer(secret_key, salt=CONFIRM_SALT).dumps(
        {"c": contact_id, "e": _email_digest(email)}
    )


def read_confirmation(secret_key: str, token: str, max_age_seconds: int) -> tuple[int, str]:
    """The contact id and address digest in a confirmation token; InputError saying why it is refused."""
    serializer = URLSafeTimedSerializer(secret_key, salt=CONFIRM_SALT)
    try:
        data = serializer.loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise InputError("this confirmation link has expired: please sign up again", where="token") from None
    except BadSignature:
        raise InputError("this confirmation link is not valid", where="token") from None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        raise InputError("this confirmation link is not valid", where="token")
    return int(data["c"]), str(data.get("e", ""))


def sign_up(
    session: Session,
    request: Signup,
    *,
    method: str,
    source: str,
    double_opt_in: bool,
    form: SignupForm | None = None,
) -> tuple[SignupResult, Contact]:
    """Create or find the contact and record the step; the caller sends the confirmation (if pending)
    after committing. An already consenting, active contact is left as it is."""
    email = normalize_email(request.email)
    name = clean_text("name", request.name or "")
    attributes = {**(form.attributes if form else {}), **check_attributes(request.attributes or {})}
    wording = request.wording or (form.wording if form else "")
    contact = session.scalar(sa.select(Contact).where(Contact.email == email))
    if contact is not None and contact.consent and contact.status == "active":
        return SignupResult(contact.id, "already"), contact
    created = contact is None
    if contact is None:
        contact = Contact(email=email, name=name, attributes=attributes, consent=False)
        session.add(contact)
        session.flush()
    else:
        contact.attributes = {**contact.attributes, **attributes}
        contact.name = contact.name or name
    state = "pending" if double_opt_in else "granted"
    consent.record(
        session,
        contact.id,
        state,
        method,
        source=source,
        ip=request.ip,
        user_agent=request.user_agent,
        wording=wording,
        evidence={"double_opt_in": double_opt_in, **({"form": form.slug} if form else {})},
    )
    if not double_opt_in:
        suppress_again(session, [email])  # no proof of the mailbox: an erased address stays suppressed
        _grant(contact)
    session.flush()
    from campaigns.flows.triggers import CONTACT_CONFIRMED, CONTACT_CREATED, record_event

    if created:
        record_event(session, contact.id, CONTACT_CREATED, key=f"{CONTACT_CREATED}:{contact.id}")
    if not double_opt_in:  # single opt-in: consent is granted now, as a confirmation would
        record_event(
            session,
            contact.id,
            CONTACT_CONFIRMED,
            key=f"{CONTACT_CONFIRMED}:{contact.id}:{utcnow().isoformat()}",
        )
    return SignupResult(contact.id, state), contact


def _grant(contact: Contact) -> None:
    contact.consent = True
    if contact.status == "unsubscribed":  # the person asked again; bounces and complaints stay
        contact.status = "active"
        contact.unsubscribed_at = None
    contact.updated_at = utcnow()


def confirm(
    session: Session, secret_key: str, token: str, max_age_seconds: int, *, ip: str = "", user_agent: str = ""
) -> Contact:
    """Apply a confirmation link: consent granted, with the wording of the signup it confirms.
    Confirming twice is harmless (one history step)."""
    contact_id, digest = read_confirmation(secret_key, token, max_age_seconds)
    contact = session.get(Contact, contact_id)
    if contact is None or digest != _email_digest(contact.email):
        raise NotFound("this confirmation link is for an address that is no longer here")
    last = session.scalar(
        sa.select(ConsentRecord)
        .where(ConsentRecord.contact_id == contact.id)
        .order_by(ConsentRecord.at.desc(), ConsentRecord.id.desc())
        .limit(1)
    )
    if last is not None and last.method == "confirmation_link" and contact.consent:
        return contact
    pending = session.scalar(
        sa.select(ConsentRecord)
        .where(ConsentRecord.contact_id == contact.id, ConsentRecord.state == "pending")
        .order_by(ConsentRecord.at.desc(), ConsentRecord.id.desc())
        .limit(1)
    )
    if pending is None:
        raise InputError("there is no signup waiting for this confirmation", where="token")
    consent.record(
        session,
        contact.id,
        "granted",
        "confirmation_link",
        source=f"confirmation of {pending.method} ({pending.source})",
        ip=ip,
        user_agent=user_agent,
        wording=pending.wording,
        evidence={"confirms_record": pending.id, "requested_at": pending.at.isoformat()},
    )
    _grant(contact)
    session.flush()
    from campaigns.flows.triggers import CONTACT_CONFIRMED, record_event

    # welcome flows start here, in the same transaction (once per signup confirmed)
    record_event(session, contact.id, CONTACT_CONFIRMED, key=f"{CONTACT_CONFIRMED}:{contact.id}:{pending.id}")
    return contact


def confirmation_message(
    session: Session,
    settings: Settings,
    contact: Contact,
    form: SignupForm | None,
    confirm_url: str,
    sender: str,
    hours: int,
) -> OutgoingMessage:
    """The confirmation email: its own template (the form's subject and text), never a campaign's,
    built by the one message builder (DKIM, Date, Message-ID at the sending domain, CRLF)."""
    template = (form.confirm_text if form and form.confirm_text else "") or DEFAULT_CONFIRM_TEXT
    subject = form.confirm_subject if form else "Please confirm your subscription"
    body = _text_env.from_string(template).render(
        confirm_url=confirm_url, form=form.name if form else "our emails", hours=hours
    )
    if confirm_url not in body:
        body += f"\n\nConfirm: {confirm_url}\n"
    from_email = (form.from_email if form and form.from_email else "") or sender
    builder = notice_builder(session, settings, from_email)
    return builder.build_notice(
        email=contact.email,
        name="",  # a name typed into a public form is not put in front of the address
        subject=subject,
        text=body,
        message_id_seed=f"confirm:{contact.id}:{confirm_url}",
    )


def confirmation_refused(session: Session, contact: Contact) -> str:
    """Why no confirmation may be mailed to this contact ("" when one may): an address that bounced
    or complained, or is on the suppression list for any reason but an erasure (a confirmation is
    the proof an erased address's owner asked again), stays unmailed, like every other path."""
    if contact.status in ("bounced", "complained"):
        return f"the contact {contact.status}"
    reason = session.scalar(sa.select(Suppression.reason).where(Suppression.email == contact.email))
    if reason is not None and reason != "erased":
        return f"suppressed ({reason})"
    return ""


def deliver(smtp_url: str, message: OutgoingMessage, what: str = "confirmation email to a signup") -> bool:
    """Send one transactional message (a confirmation, a sign-in link) now; False (logged) when the
    server refuses it or cannot be reached."""
    with SmtpTransport(SmtpConfig.from_url(smtp_url)) as transport:
        result = transport.send(message)
    if not result.accepted:
        # the reply's code only: servers quote the address in the rest
        log.warning("%s not accepted: %s", what, result.error[:3] or "no reply")
    return result.accepted


def form_token(secret_key: str, slug: str) -> str:
    """The hosted form's anti-forgery token: signed, bound to the form, expiring; needs no cookie, so
    the form also works framed in another site."""
    return URLSafeTimedSerializer(secret_key, salt=FORM_SALT).dumps(slug)


def check_form_token(secret_key: str, slug: str, token: str, max_age_seconds: int) -> None:
    try:
        value = URLSafeTimedSerializer(secret_key, salt=FORM_SALT).loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise InputError("the form has expired: reload the page and send it again", where="form") from None
    except BadSignature:
        raise InputError("the form could not be verified: reload the page", where="form") from None
    if value != slug:
        raise InputError("the form could not be verified: reload the page", where="form")
