"""The contacts, suppression, segment, catalog and import endpoints, driven as an API client would."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import SimpleWorker

from campaigns.ops.queues import all_queues
from models import Campaign, Send, Template


def _import(api: Any, path: str, csv_text: str, **query: str) -> Any:
    return api.post(
        path,
        query_string=query,
        data={"file": (io.BytesIO(csv_text.encode()), "people.csv")},
        content_type="multipart/form-data",
    )


CONTACTS_CSV = (
    "email,name,country,consent,plan\n"
    "ann@example.com,Ann,GB,yes,gold\n"
    "bob@example.com,Bob,FR,yes,silver\n"
    "cat@example.com,Cat,GB,no,gold\n"
    "broken-address,Dan,GB,yes,\n"
    "ann@example.com,Ann twice,GB,yes,\n"
)


def test_contact_import_upload_and_report(api: Any) -> None:
    response = _import(api, "/api/v1/contacts/import", CONTACTS_CSV)
    assert response.status_code == 201, response.json
    run = response.json
    assert (run["status"], run["rows_imported"], run["rows_failed"]) == ("done", 3, 2)
    assert [(e["row"], e["field"]) for e in run["errors"]] == [(5, "email"), (6, "email")]
    status = api.get(f"/api/v1/imports/{run['id']}").json
    assert status["errors"] == run["errors"]
    listed = api.get("/api/v1/imports?kind=contacts").json["imports"]
    assert [r["id"] for r in listed] == [run["id"]] and "errors" not in listed[0]

    raw = api.post(
        "/api/v1/contacts/import?filename=raw.csv",
        data="email,name\neve@example.com,Eve\n",
        content_type="text/csv",
    )
    assert raw.status_code == 201 and raw.json["filename"] == "raw.csv" and raw.json["rows_imported"] == 1


def test_queued_import_runs_in_a_worker(api: Any, app: Flask, redis: Redis) -> None:
    response = _import(api, "/api/v1/contacts/import", CONTACTS_CSV, mode="async")
    assert response.status_code == 202
    assert response.json["status"] == "queued"
    SimpleWorker(all_queues(app.extensions["mailramp"]), connection=redis).work(burst=True)
    done = api.get(f"/api/v1/imports/{response.json['id']}").json
    assert (done["status"], done["rows_imported"], done["rows_failed"], done["rows_total"]) == (
        "done",
        3,
        2,
        5,
    )


def test_bad_uploads(api: Any) -> None:
    assert _import(api, "/api/v1/contacts/import", "name\nAnn\n").json["status"] == "failed"
    empty = api.post("/api/v1/contacts/import", data=b"", content_type="text/csv")
    assert (empty.status_code, empty.json["where"]) == (400, "file")
    wrong = api.post("/api/v1/contacts/import", data={"other": (io.BytesIO(b"x"), "x.csv")})
    assert (wrong.status_code, wrong.json["where"]) == (400, "file")
    mode = api.post("/api/v1/contacts/import?mode=later", data="email\n", content_type="text/csv")
    assert (mode.status_code, mode.json["where"]) == (400, "mode")


def test_contacts_crud_search_and_history(api: Any, app: Flask) -> None:
    _import(api, "/api/v1/contacts/import", CONTACTS_CSV)
    created = api.post(
        "/api/v1/contacts", json={"email": "Zed@Example.com", "name": "Zed", "attributes": {"vip": True}}
    )
    assert created.status_code == 201 and created.json["email"] == "zed@example.com"
    duplicate = api.post("/api/v1/contacts", json={"email": "zed@example.com"})
    assert duplicate.status_code == 409
    bad = api.post("/api/v1/contacts", json={"email": "zed", "name": "Z"})
    assert (bad.status_code, bad.json["where"]) == (400, "email")

    page = api.get("/api/v1/contacts?limit=2").json
    assert page["total"] == 4 and len(page["contacts"]) == 2 and page["next_after"] is not None
    rest = api.get(f"/api/v1/contacts?limit=2&after={page['next_after']}").json
    assert len(rest["contacts"]) == 2 and rest["next_after"] is None
    assert [c["email"] for c in api.get("/api/v1/contacts?q=BOB").json["contacts"]] == ["bob@example.com"]
    assert api.get("/api/v1/contacts?limit=abc").json["where"] == "limit"

    zed = created.json["id"]
    patched = api.patch(
        f"/api/v1/contacts/{zed}", json={"country": "NO", "attributes": {"vip": None, "tier": 2}}
    )
    assert patched.json["attributes"] == {"tier": 2} and patched.json["country"] == "NO"
    # attributes are bounded (64 KiB of JSON), also when patches add up
    half = {"notes": "x" * 40_000}
    assert api.patch(f"/api/v1/contacts/{zed}", json={"attributes": half}).status_code == 200
    more = api.patch(f"/api/v1/contacts/{zed}", json={"attributes": {"more": "y" * 40_000}})
    assert more.status_code == 400 and more.json["where"] == "attributes" and "65,536" in more.json["error"]
    assert api.patch(f"/api/v1/contacts/{zed}", json={"attributes": {"notes": None}}).status_code == 200
    assert api.patch(f"/api/v1/contacts/{zed}", json={"consent": "sure"}).json["where"] == "consent"

    session = app.extensions["mailramp"].session_factory()
    template = Template(name="t", subject="s", control_html="c", ai_html="a")
    session.add(template)
    session.flush()
    campaign = Campaign(name="Spring", template_id=template.id, from_email="shop@example.com")
    session.add(campaign)
    session.flush()
    sent_at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    session.add(
        Send(
            campaign_id=campaign.id,
            contact_id=zed,
            arm="treatment",
            content="ai",
            state="sent",
            sent_at=sent_at,
        )
    )
    session.commit()
    session.close()
    detail = api.get(f"/api/v1/contacts/{zed}").json
    assert detail["suppressed"] is False
    assert [(s["campaign"], s["arm"], s["state"], s["sent_at"]) for s in detail["sends"]] == [
        ("Spring", "treatment", "sent", sent_at.isoformat())
    ]
    assert api.get("/api/v1/contacts/999999").status_code == 404
    assert api.delete(f"/api/v1/contacts/{zed}?suppress=true").status_code == 204
    assert api.get(f"/api/v1/contacts/{zed}").status_code == 404
    assert api.get("/api/v1/suppressions?q=zed").json["suppressions"][0]["reason"] == "deleted"


def test_suppressions(api: Any) -> None:
    first = api.post("/api/v1/suppressions", json={"email": "No@Example.com", "reason": "complaint"})
    assert first.status_code == 201 and first.json["email"] == "no@example.com"
    assert api.post("/api/v1/suppressions", json={"email": "no@example.com"}).status_code == 200
    assert (
        api.post("/api/v1/suppressions", json={"email": "x@example.com", "reason": "bored"}).json["where"]
        == "reason"
    )
    upload = _import(api, "/api/v1/suppressions/import", "email\nno@example.com\nyes@example.com\nbad\n")
    assert (upload.json["rows_imported"], upload.json["rows_skipped"], upload.json["rows_failed"]) == (
        1,
        1,
        1,
    )
    assert api.get("/api/v1/suppressions").json["total"] == 2
    assert api.delete("/api/v1/suppressions/NO@example.com").status_code == 204
    assert api.delete("/api/v1/suppressions/no@example.com").status_code == 404


def test_segments_with_live_counts(api: Any) -> None:
    _import(api, "/api/v1/contacts/import", CONTACTS_CSV)
    api.post("/api/v1/suppressions", json={"email": "bob@example.com"})
    rules = {"field": "attributes.plan", "op": "in", "value": ["gold", "silver"]}
    assert api.post("/api/v1/segments/count", json={"rules": rules}).json == {"count": 3, "sendable": 1}
    bad = api.post("/api/v1/segments/count", json={"rules": {"all": [{"field": "plan", "value": "gold"}]}})
    assert bad.status_code == 400 and bad.json["where"] == "rules.all[0].field"
    created = api.post("/api/v1/segments", json={"name": "Paying", "rules": rules})
    assert created.status_code == 201 and (created.json["count"], created.json["sendable"]) == (3, 1)
    assert api.post("/api/v1/segments", json={"name": "Paying", "rules": rules}).status_code == 409
    assert api.post("/api/v1/segments", json={"name": "No rules"}).json["where"] == "rules"
    segment_id = created.json["id"]
    gold = api.patch(
        f"/api/v1/segments/{segment_id}", json={"rules": {"field": "attributes.plan", "value": "gold"}}
    )
    assert gold.json["count"] == 2
    members = api.get(f"/api/v1/segments/{segment_id}/contacts").json["contacts"]
    assert [m["email"] for m in members] == ["ann@example.com", "cat@example.com"]
    sendable = api.get(f"/api/v1/segments/{segment_id}/contacts?sendable=true").json["contacts"]
    assert [m["email"] for m in sendable] == ["ann@example.com"]
    in_segment = api.get(f"/api/v1/contacts?segment_id={segment_id}").json
    assert in_segment["total"] == 2
    assert [s["name"] for s in api.get("/api/v1/segments").json["segments"]] == ["Paying"]
    assert api.delete(f"/api/v1/segments/{segment_id}").status_code == 204
    assert api.get(f"/api/v1/segments/{segment_id}").status_code == 404


def test_catalog_and_history(api: Any) -> None:
    _import(api, "/api/v1/contacts/import", "email,customer_id\nann@example.com,17850\n")
    items = _import(api, "/api/v1/items/import", "sku,name,price\nK1,Candle,2.5\nK2,Mug,x\n")
    assert (items.json["rows_imported"], items.json["rows_failed"]) == (1, 1)
    history = _import(
        api,
        "/api/v1/interactions/import",
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "1,K1,CANDLE,2,2011-01-01 10:00,2.5,17850,United Kingdom\n"
        "2,K9,NEW MUG,1,2011-01-02 10:00,4,17850,United Kingdom\n",
    )
    assert history.json["rows_imported"] == 2
    listed = api.get("/api/v1/items?q=mug").json
    assert [i["sku"] for i in listed["items"]] == ["K9"] and listed["items"][0]["category"] == "kitchen"
    k1 = api.get("/api/v1/items?q=K1").json["items"][0]
    assert api.patch(f"/api/v1/items/{k1['id']}", json={"enabled": False}).json["enabled"] is False
    assert api.post("/api/v1/items", json={"sku": "K3", "price": -1}).json["where"] == "price"
    assert api.post("/api/v1/items", json={"sku": "K3", "name": "Gift Tag"}).status_code == 201
    assert {c["category"] for c in api.get("/api/v1/items/categories").json["categories"]} >= {"kitchen"}
    contact = api.get("/api/v1/contacts").json["contacts"][0]
    bought = api.get(f"/api/v1/contacts/{contact['id']}/interactions").json["interactions"]
    assert [(b["sku"], b["kind"], b["value"]) for b in bought] == [
        ("K9", "purchase", 4.0),
        ("K1", "purchase", 5.0),
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/v1/contacts"), ("post", "/api/v1/contacts/import"), ("post", "/api/v1/segments"),
     ("delete", "/api/v1/contacts/1"), ("post", "/api/v1/items")],
)  # fmt: skip
def test_viewers_cannot_change_anything(make_api_client: Any, method: str, path: str) -> None:
    viewer = make_api_client("viewer")
    assert getattr(viewer, method)(path, json={}).status_code == 403


def test_routes_are_documented(api: Any) -> None:
    paths = api.get("/api/v1/openapi.json").json["paths"]
    for path in ("/contacts", "/contacts/{contact_id}", "/contacts/import", "/imports/{run_id}", "/segments/count",
                 "/suppressions", "/items", "/interactions/import"):  # fmt: skip
        assert path in paths, path
    assert "text/csv" in paths["/contacts/import"]["post"]["requestBody"]["content"]
