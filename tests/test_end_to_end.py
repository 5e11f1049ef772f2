"""The whole loop through the API, on real parts: import 1,000 contacts, build a segment, create a
campaign with 20% AI exposure, send through a real rq worker to a real SMTP server, parse what it
received, follow the real tracking links through the app, and read the results per arm."""

from __future__ import annotations

import csv
import io
import math
import random
import re
from collections import Counter
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from rq import SimpleWorker

from campaigns.events.ingest import ingest
from campaigns.ops.queues import all_queues
from campaigns.runtime import Runtime
from models import Decision, Send
from tests.conftest import SmtpSink

HUMAN_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"


def contacts_csv(n: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "name", "country", "plan", "consent"])
    for i in range(n):
        country = "France" if i % 10 == 0 else "United Kingdom"
        writer.writerow(
            [f"Customer.{i}@Example.COM", f"Customer {i}", country, "pro" if i % 3 else "free", "yes"]
        )
    return out.getvalue().encode()


def catalog_csvs() -> tuple[bytes, bytes]:
    items = ["sku,name,url,price,category"] + [
        f"SKU{i},Item {i},https://shop.example/items/SKU{i},{3 + i}.50,{'kitchen' if i % 2 else 'garden'}"
        for i in range(30)
    ]
    rng = random.Random(7)
    history = ["email,sku,occurred_at,quantity,unit_price"] + [
        f"customer.{c}@example.com,SKU{rng.randrange(30)},2026-10-{1 + k % 28:02d}T10:00:00,1,4.5"
        for c in range(0, 1000, 2)
        for k in range(3)
    ]
    return "\n".join(items).encode(), "\n".join(history).encode()


def test_import_target_send_track_and_read_results_per_arm(
    app: Any, client: FlaskClient, make_api_client: Any, smtp_sink: SmtpSink
) -> None:
    rt: Runtime = app.extensions["mailramp"]
    api = make_api_client("marketer")

    # 1. Contacts, catalog and purchase history through the import API.
    run = api.post(
        "/api/v1/contacts/import?filename=contacts.csv", data=contacts_csv(1000), content_type="text/csv"
    ).get_json()
    assert (run["rows_imported"], run["rows_failed"]) == (1000, 0), run
    items, history = catalog_csvs()
    assert api.post("/api/v1/items/import", data=items, content_type="text/csv").status_code == 201
    interactions = api.post("/api/v1/interactions/import", data=history, content_type="text/csv").get_json()
    assert interactions["rows_imported"] == 1500, interactions

    # 2. A segment, with its live count.
    rules = {"all": [{"field": "country", "op": "eq", "value": "United Kingdom"}]}
    assert api.post("/api/v1/segments/count", json={"rules": rules}).get_json()["count"] == 900
    segment = api.post("/api/v1/segments", json={"name": "UK", "rules": rules}).get_json()

    # 3. A template and a campaign with 20% AI exposure.
    template = api.post(
        "/api/v1/templates",
        json={
            "name": "Weekly picks",
            "subject": "Picks for you, {{ contact.first_name }}",
            "layout_html": "<html><body>{{ content }}</body></html>",
            "control_html": '<p>This week\'s best sellers: <a href="https://shop.example/best">shop</a></p>',
            "ai_html": '{% for r in recommendations %}<p><a href="{{ r.url }}">{{ r.name }}</a></p>{% endfor %}',
        },
    ).get_json()
    campaign = api.post(
        "/api/v1/campaigns",
        json={
            "name": "Weekly picks",
            "template_id": template["id"],
            "segment_id": segment["id"],
            "from_email": "shop@example.com",
            "from_name": "The Shop",
            "ai": {"exposure_percent": 20, "holdout_percent": 0, "plan": "manual"},  # one stage at 20%
        },
    )
    assert campaign.status_code == 201, campaign.get_json()
    campaign_id = campaign.get_json()["id"]

    # 4. Send the wave through a real rq worker to the real SMTP server.
    wave = api.post(f"/api/v1/campaigns/{campaign_id}/waves", json={}).get_json()
    assert wave["planned"] == 900
    SimpleWorker(all_queues(rt), connection=rt.redis).work(burst=True)
    progress = api.get(f"/api/v1/campaigns/{campaign_id}").get_json()["progress"]
    assert progress["states"] == {"sent": 900} and progress["fraction"] == 1.0
    assert len(smtp_sink.messages) == 900
    recipients = Counter(rcpts[0] for _, rcpts in smtp_sink.envelopes)
    assert len(recipients) == 900 and all(email.startswith("customer.") for email in recipients)
    # The finished wave was evaluated: a decision with its evidence, and no data never promotes.
    rollout_id = campaign.get_json()["rollout_id"]
    with rt.session() as session:
        decisions = session.scalars(sa.select(Decision).where(Decision.rollout_id == rollout_id)).all()
        assert len(decisions) == 1 and decisions[0].outcome != "advance"

    # 5. Read the messages: treatment has recommended items, control the best-sellers link.
    by_arm: dict[str, list[str]] = {"treatment": [], "control": []}
    for message in smtp_sink.messages:
        html = message.get_body(("html",)).get_content()
        by_arm["treatment" if "Item " in html else "control"].append(html)
    treated = len(by_arm["treatment"])
    # 20% of 900 within 4 binomial standard deviations.
    assert abs(treated - 180) <= 4 * math.sqrt(900 * 0.2 * 0.8), treated

    # Recipients read their email an hour later (opens and clicks seconds after delivery are counted
    # as machine prefetches and link scanners, not people).
    with rt.session() as session:
        earlier = [
            {"id": i, "sent_at": t - timedelta(hours=1)}
            for i, t in session.execute(sa.select(Send.id, Send.sent_at))
        ]
        session.execute(sa.update(Send), earlier)

    # 6. Follow real links through the app: opens for the first 100 of each arm, clicks for 50,
    #    and a conversion for 10 treatment and 5 control recipients (by the token the redirect gives).
    expected = {
        "treatment": {"opens": 0, "clicks": 0, "conversions": 0},
        "control": {"opens": 0, "clicks": 0, "conversions": 0},
    }
    for arm, htmls in by_arm.items():
        for k, html in enumerate(htmls[:100]):
            pixel = re.search(r'src="http://mailramp.test(/t/o/[^"]+)"', html).group(1)  # type: ignore[union-attr]
            assert client.get(pixel, headers={"User-Agent": HUMAN_UA}).status_code == 200
            expected[arm]["opens"] += 1
            if k < 50:
                link = re.search(r'href="http://mailramp.test(/t/c/[^"]+)"', html).group(1)  # type: ignore[union-attr]
                response = client.get(link, headers={"User-Agent": HUMAN_UA})
                assert response.status_code == 302
                expected[arm]["clicks"] += 1
                if k < (10 if arm == "treatment" else 5):
                    token = response.headers["Location"].split("mr=")[1]
                    assert (
                        client.post(f"/t/v/{token}", data={"value": "20", "order": f"o{k}"}).status_code
                        == 204
                    )
                    expected[arm]["conversions"] += 1
    stored = ingest(rt)
    assert stored.stored == sum(sum(v.values()) for v in expected.values())

    # 7. Results per arm, as JSON and as CSV.
    results = {r["arm"]: r for r in api.get(f"/api/v1/campaigns/{campaign_id}/results").get_json()["arms"]}
    assert results["treatment"]["sent"] == treated and results["control"]["sent"] == 900 - treated
    for arm, counts in expected.items():
        assert results[arm]["opens"] == counts["opens"]
        assert results[arm]["clicks"] == counts["clicks"]
        assert results[arm]["conversions"] == counts["conversions"]
        assert results[arm]["revenue"] == 20.0 * counts["conversions"]
        assert results[arm]["conversion_rate"] == counts["conversions"] / results[arm]["delivered"]
    exported = api.get(f"/api/v1/campaigns/{campaign_id}/results.csv")
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert {r["arm"]: int(r["clicks"]) for r in rows} == {a: c["clicks"] for a, c in expected.items()}
