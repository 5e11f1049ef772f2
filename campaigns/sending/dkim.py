"""DKIM: one key per sending domain, kept in the database so every worker host signs alike.

Messages are signed with dkimpy (relaxed/simple canonicalization, rsa-sha256). The signature covers
the headers Gmail's and Yahoo's bulk-sender rules care about, the one-click unsubscribe pair
included, so a relay cannot strip or alter them without breaking it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import dkim
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session

from campaigns.errors import InputError
from models import DkimKey

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SELECTOR = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class DkimSigner:
    domain: str
    selector: str
    private_key_pem: bytes

    def sign(self, data: bytes) -> bytes:
        """The message with its DKIM-Signature header in front."""
        header: bytes = dkim.sign(
            data,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key_pem,
            canonicalize=(b"relaxed", b"simple"),
            include_headers=list(SIGNED_HEADERS),
        )
        return header + data


@dataclass(frozen=True)
class DnsRecord:
    name: str
    type: str
    value: str

    def zone_line(self) -> str:
        # A TXT string longer than 255 characters is split into quoted pieces that resolvers join.
        pieces = [self.value[i : i + 255] for i in range(0, len(self.value), 255)]
        return f"{self.name}. 3600 IN {self.type} {' '.join(f'{chr(34)}{p}{chr(34)}' for p in pieces)}"


def new_private_key(bits: int = 2048) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_key_b64(private_key_pem: bytes) -> str:
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def dkim_txt(private_key_pem: bytes) -> str:
    return f"v=DKIM1; k=rsa; p={public_key_b64(private_key_pem)}"


def dns_records(
    domain: str,
    selector: str,
    private_key_pem: bytes,
    *,
    spf_include: str = "",
    dmarc_rua: str = "",
    bounce_domain: str = "",
) -> list[DnsRecord]:
    """What to publish: the DKIM key, an SPF policy for the envelope domain, a DMARC policy."""
    spf_domain = bounce_domain or domain
    spf = "v=spf1 a mx" + (f" include:{spf_include}" if spf_include else "") + " ~all"
    dmarc = "v=DMARC1; p=none; adkim=r; aspf=r" + (f"; rua=mailto:{dmarc_rua}" if dmarc_rua else "")
    return [
        DnsRecord(f"{selector}._domainkey.{domain}", "TXT", dkim_txt(private_key_pem)),
        DnsRecord(spf_domain, "TXT", spf),
        DnsRecord(f"_dmarc.{domain}", "TXT", dmarc),
    ]


def create_key(
    session: Session, domain: str, selector: str = "mailramp", *, replace: bool = False
) -> DkimKey:
    domain, selector = domain.strip().lower().rstrip("."), selector.strip().lower()
    if not _DOMAIN.match(domain):
        raise InputError(f"not a domain name: {domain!r}", where="domain")
    if not _SELECTOR.match(selector):
        raise InputError(f"a selector is letters, digits and dashes, not {selector!r}", where="selector")
    row = session.scalar(sa.select(DkimKey).where(DkimKey.domain == domain))
    if row is not None and not replace:
        raise InputError(
            f"{domain} already has a DKIM key (selector {row.selector}); pass --replace", where="domain"
        )
    pem = new_private_key().decode()
    if row is None:
        row = DkimKey(domain=domain, selector=selector, private_key_pem=pem)
        session.add(row)
    else:
        row.selector, row.private_key_pem = selector, pem
    session.flush()
    return row


def signer_for(session: Session, from_email: str) -> DkimSigner | None:
    """The signer of the From address's domain, or None when that domain has no key yet."""
    domain = from_email.rpartition("@")[2].lower()
    row = session.scalar(sa.select(DkimKey).where(DkimKey.domain == domain))
    if row is None:
        return None
    return DkimSigner(row.domain, row.selector, row.private_key_pem.encode())
