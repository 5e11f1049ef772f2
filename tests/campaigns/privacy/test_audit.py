"""The audit log of everything: recorded centrally for API, UI and CLI changes, refused updates and
deletes by the database itself, rows that outlive their objects, filters and a CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from models import AuditEntry, Rollout, RolloutAudit
from tests.conftest import ApiClient


def entries(session: Session, **where: Any) -> list[AuditEntry]:
    query = sa.select(AuditEntry).order_by(AuditEntry.id)
    for key, value in where.items():
        query = query.where(getattr(AuditEntry, key) == value)
    return list(session.scalars(query))


def test_api_changes_are_recorded_with_the_token_and_before_after(api: ApiClient, session: Session) -> None:
    made = api.post("/api/v1/segments", json={"name": "UK", "rules": {"all": []}})
    assert made.status_code == 201, made.json
    segment_id = made.json["id"]
    assert api.patch(f"/api/v1/segments/{segment_id}", json={"name": "Britain"}).status_code == 200
    assert api.delete(f"/api/v1/segments/{segment_id}").status_code == 204
    rows = entries(session, object_type="segment", object_id=str(segment_id))
    assert [r.action for r in rows] == ["create", "update", "delete"]
    assert all(r.actor.startswith("admin@example.com (token mr_") and r.via == "api" for r in rows)
    assert rows[0].after["name"] == "UK"
    assert (rows[1].before, rows[1].after) == ({"name": "UK"}, {"name": "Britain"})
    assert rows[2].before["name"] == "Britain"


def test_settings_changes_are_recorded(api: ApiClient, session: Session) -> None:
    plan = api.get("/api/v1/settings/default-plan").json
    wider = {"stages": plan["stages"], "holdout_bp": 1000}
    assert api.put("/api/v1/settings/default-plan", json=wider).status_code == 200, wider
    rows = entries(session, object_type="setting")
    assert [r.action for r in rows] == ["create"] and rows[0].object_id == "default_plan"
    assert rows[0].after["value"]["holdout_bp"] == 1000
    assert rows[0].actor.startswith("admin@example.com (token mr_")
    wider["holdout_bp"] = 700
    assert api.put("/api/v1/settings/default-plan", json=wider).status_code == 200
    update = entries(session, object_type="setting")[-1]
    assert update.action == "update"
    assert (update.before["value"]["holdout_bp"], update.after["value"]["holdout_bp"]) == (1000, 700)


def test_users_and_tokens_are_audited_without_secrets(api: ApiClient, session: Session) -> None:
    made = api.post(
        "/api/v1/users",
        json={"email": "new@example.com", "password": "a long enough password", "role": "viewer"},
    )
    assert made.status_code == 201, made.json
    user = entries(session, object_type="user", action="create")[-1]
    assert user.after["email"] == "new@example.com" and user.after["role"] == "viewer"
    assert user.after["password_hash"] == "<set>"
    token = entries(session, object_type="api_token", action="create")
    assert token and all(t.after["token_hash"] == "<set>" for t in token)


def test_contacts_are_pseudonymous_in_the_log(api: ApiClient, session: Session) -> None:
    made = api.post("/api/v1/contacts", json={"email": "Ann@Example.com", "name": "Ann Smith"})
    contact_id = made.json["id"]
    api.patch(f"/api/v1/contacts/{contact_id}", json={"status": "unsubscribed"})
    rows = entries(session, object_type="contact")
    assert [r.action for r in rows] == ["create", "update"]
    assert rows[0].object_id == rows[1].object_id != str(contact_id)
    text = str([(r.object_id, r.summary, r.before, r.after) for r in rows])
    assert "ann@example.com" not in text and "Ann Smith" not in text
    assert rows[0].after["email"].startswith("hmac:")
    assert rows[1].after["status"] == "unsubscribed" and rows[1].before["status"] == "active"


@pytest.mark.parametrize("statement", ["UPDATE {t} SET actor = 'someone else'", "DELETE FROM {t}"])
def test_the_database_refuses_changes(api: ApiClient, app: Flask, statement: str) -> None:
    api.post("/api/v1/segments", json={"name": "UK", "rules": {"all": []}})
    engine = app.extensions["mailramp"].session_factory.kw["bind"]
    for table in ("audit_log", "rollout_audit"):
        with engine.begin() as conn:
            if table == "rollout_audit":
                conn.execute(sa.insert(RolloutAudit), [{"rollout_id": 1, "actor": "a", "action": "x"}])
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement.format(t=table)))
        with engine.connect() as conn:
            assert conn.scalar(sa.text(f"SELECT count(*) FROM {table}"))


def test_rollout_audit_outlives_its_rollout(session: Session) -> None:
    rollout = Rollout(name="r", salt="s")
    session.add(rollout)
    session.flush()
    session.add(RolloutAudit(rollout_id=rollout.id, actor="me", action="create", reason="why"))
    session.commit()
    rollout_id = rollout.id
    session.delete(rollout)
    session.commit()
    kept = session.scalars(sa.select(RolloutAudit).where(RolloutAudit.rollout_id == rollout_id)).all()
    assert [a.action for a in kept] == ["create"]
    log = entries(session, object_type="rollout", object_id=str(rollout_id))
    assert [r.action for r in log] == ["create", "create", "delete"]  # the row, the transition, the deletion


def test_filter_and_csv_export(api: ApiClient, make_api_client: Any) -> None:
    api.post("/api/v1/segments", json={"name": '=HYPERLINK("http://evil")', "rules": {"all": []}})
    api.post("/api/v1/templates", json={"name": "t"})  # refused or not, only changes are logged
    viewer = make_api_client("viewer")
    listed = viewer.get("/api/v1/audit?object_type=segment")
    assert listed.status_code == 200
    assert [e["object_type"] for e in listed.json["entries"]] == ["segment"]
    assert viewer.get("/api/v1/audit?since=yesterday").status_code == 400
    exported = viewer.get("/api/v1/audit.csv?object_type=segment")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0]["summary"].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it
