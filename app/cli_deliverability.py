"""Deliverability from the command line: DKIM keys and DNS records, the inbound bounce server.

mailramp dkim create shop.example [--selector mr1] [--spf-include _spf.provider.example] [--replace]
mailramp dkim records shop.example           # print the records again (the key stays in the database)
mailramp inbound [--host 0.0.0.0] [--port 25] # receive bounces and ARF reports for BOUNCE_DOMAIN
"""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from campaigns.errors import InputError


@click.group("dkim")
def dkim_group() -> None:
    """DKIM keys per sending domain, with the SPF and DMARC records the domain needs."""


def _print_records(domain: str, selector: str, pem: bytes, spf_include: str, dmarc_rua: str) -> None:
    from campaigns.sending.dkim import dns_records

    bounce_domain = current_app.extensions["mailramp"].settings.bounce_domain
    click.echo(f"; publish these records in the DNS zone of {domain}")
    for record in dns_records(
        domain, selector, pem, spf_include=spf_include, dmarc_rua=dmarc_rua, bounce_domain=bounce_domain
    ):
        click.echo(record.zone_line())


@dkim_group.command("create")
@click.argument("domain")
@click.option("--selector", default="mailramp", show_default=True)
@click.option("--spf-include", default="", help="your relay's SPF include, e.g. amazonses.com")
@click.option("--dmarc-rua", default="", help="address for DMARC aggregate reports")
@click.option("--replace", is_flag=True, help="replace the domain's existing key (rotation)")
@with_appcontext
def create_command(domain: str, selector: str, spf_include: str, dmarc_rua: str, replace: bool) -> None:
    """Create a 2048-bit RSA key for DOMAIN and print the DNS records to publish."""
    from campaigns.sending.dkim import create_key

    rt = current_app.extensions["mailramp"]
    with rt.session() as session:
        try:
            key = create_key(session, domain, selector, replace=replace)
        except InputError as exc:
            raise click.ClickException(f"{exc.where}: {exc.message}") from exc
        domain, selector, pem = key.domain, key.selector, key.private_key_pem.encode()
    _print_records(domain, selector, pem, spf_include, dmarc_rua)


@dkim_group.command("records")
@click.argument("domain")
@click.option("--spf-include", default="")
@click.option("--dmarc-rua", default="")
@with_appcontext
def records_command(domain: str, spf_include: str, dmarc_rua: str) -> None:
    """Print the DNS records of DOMAIN's existing key."""
    from models import DkimKey

    rt = current_app.extensions["mailramp"]
    with rt.session() as session:
        key = session.scalar(sa.select(DkimKey).where(DkimKey.domain == domain.strip().lower()))
        if key is None:
            raise click.ClickException(f"{domain} has no DKIM key: run `mailramp dkim create {domain}`")
        _print_records(key.domain, key.selector, key.private_key_pem.encode(), spf_include, dmarc_rua)


@click.command("inbound")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=2525, show_default=True, type=int, help="25 behind the bounce domain's MX")
@with_appcontext
def inbound_command(host: str, port: int) -> None:
    """Run the inbound SMTP server that reads bounces (RFC 3464) and abuse reports (RFC 5965)."""
    import time

    from campaigns.sending.inbound import start_inbound
    from campaigns.sending.outbox import quiet_smtp_server_log

    quiet_smtp_server_log()

    rt = current_app.extensions["mailramp"]
    if not rt.settings.bounce_domain:
        raise click.ClickException(
            "set BOUNCE_DOMAIN (MAILRAMP_BOUNCE_DOMAIN) first: the server accepts mail for it only"
        )
    controller = start_inbound(rt, host, port)
    click.echo(f"inbound SMTP for @{rt.settings.bounce_domain} on {host}:{port}; Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        controller.stop()
