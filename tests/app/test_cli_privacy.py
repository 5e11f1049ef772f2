"""`mailramp privacy export|erase|retention` and `mailramp audit export` through Flask's CLI runner."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.contacts.records import create_contact
from models import AuditEntry, Contact


def test_export_erase_and_audit_from_the_command_line(app: Flask, session: Session, tmp_path: Path) -> None:
    contact_id = create_contact(session, {"email": "cli@example.com", "name": "Cli Person"}).id
    session.commit()
    runner = app.test_cli_runner()
    out = tmp_path / "person.json"
    exported = runner.invoke(args=["privacy", "export", str(contact_id), "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    document = json.loads(out.read_text())
    assert document["profile"]["email"] == "cli@example.com"
    assert [h["method"] for h in document["consent_history"]] == ["api"]
    missing = runner.invoke(args=["privacy", "export", "999999"])
    assert missing.exit_code == 1 and "does not exist" in missing.output

    refused = runner.invoke(args=["privacy", "erase", str(contact_id), "-r", "ticket 7"], input="n\n")
    assert refused.exit_code == 1 and session.get(Contact, contact_id) is not None
    erased = runner.invoke(args=["privacy", "erase", str(contact_id), "-r", "ticket 7", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.output.strip().splitlines()[-1])["consent_records"] == 1
    session.expire_all()
    assert session.get(Contact, contact_id) is None
    erase = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "erase")).one()
    assert erase.actor.startswith("cli:") and erase.via == "cli" and erase.summary == "ticket 7"

    log = tmp_path / "audit.csv"
    result = runner.invoke(args=["audit", "export", "--object-type", "contact", "-o", str(log)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(log.open()))
    assert [r["action"] for r in rows] == ["create", "export", "erase"]
    assert "cli@example.com" not in log.read_text()
    bad = runner.invoke(args=["audit", "export", "--since", "last week"])
    assert bad.exit_code == 1 and "--since" in bad.output

    retention = runner.invoke(args=["privacy", "retention", "--events-days", "30", "--sends-days", "60"])
    assert retention.exit_code == 0 and json.loads(retention.output)["sends_deleted"] == 0
