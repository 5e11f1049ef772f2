"""The model API and the `mailramp model` commands, and the offline protocol on a small generated CSV."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from campaigns.ops import queues
from campaigns.recommender import training
from campaigns.recommender.evaluation import online_retail_report
from tests.campaigns.recommender.conftest import NOW, Shop


def write_retail_csv(path: Path) -> Path:
    """Ten customers: each re-buys their two staples every month; odd customers also try item Z after
    the split. Postage lines and a cancellation must be ignored."""
    lines = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"]
    invoice = 500000
    for customer in range(10):
        staples = [f"S{customer % 4}", f"S{(customer + 1) % 4}"]
        country = "France" if customer < 3 else "United Kingdom"
        for month in range(1, 13):
            invoice += 1
            date = f"2011-{month:02d}-10 10:00"
            for code in staples:
                lines.append(f'{invoice},{code},"STAPLE, {code}",2,{date},1.5,{12000 + customer},{country}')
            lines.append(f"{invoice},POST,POSTAGE,1,{date},18,{12000 + customer},{country}")
            if month >= 10 and customer % 2:
                lines.append(f"{invoice},Z,NEW THING,1,{date},3.0,{12000 + customer},{country}")
    lines.append(f"C{invoice},S0,STAPLE,-2,2011-11-11 10:00,1.5,12000,France")
    target = path / "retail.csv.gz"
    with gzip.open(target, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return target


def test_offline_protocol_on_a_generated_file(tmp_path: Path) -> None:
    report = online_retail_report(str(write_retail_csv(tmp_path)))
    by_name = {r.name: r.metrics for r in report.results}
    assert report.customers == 10
    # every customer re-buys exactly their two staples after the split (Z is unseen in training)
    own = by_name["own past items"]
    assert own.hit_rate == 1.0
    assert own.precision == pytest.approx(2 / 10)
    assert own.recall == pytest.approx((5 * 1.0 + 5 * 2 / 3) / 10)
    assert by_name["blend (production)"].ndcg == pytest.approx(own.ndcg)


def test_model_evaluate_prints_the_table(app: Flask, tmp_path: Path) -> None:
    result = app.test_cli_runner().invoke(
        args=["model", "evaluate", "--data", str(write_retail_csv(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    assert "| blend (production) |" in result.output
    assert "10 customers with purchases on both sides" in result.output
    as_json = app.test_cli_runner().invoke(
        args=["model", "evaluate", "--json", "--data", str(tmp_path / "retail.csv.gz")]
    )
    figures = json.loads(as_json.output)
    assert figures["customers"] == 10 and "EASE" in figures["models"]
    missing = app.test_cli_runner().invoke(
        args=["model", "evaluate", "--data", str(tmp_path / "nope.csv.gz")]
    )
    assert missing.exit_code != 0 and "not found" in missing.output


def test_model_cli_trains_lists_promotes_and_scores(app: Flask, shop: Shop) -> None:
    runner = app.test_cli_runner()
    trained = runner.invoke(args=["model", "train", "--kind", "popularity", "--no-evaluate"])
    assert trained.exit_code == 0, trained.output
    assert "ready as champion" in trained.output
    runner.invoke(args=["model", "train", "--kind", "blend", "--param", "discovery__l2=50", "--no-evaluate"])
    listing = runner.invoke(args=["model", "list"])
    assert "challenger" in listing.output and "champion" in listing.output
    shown = json.loads(runner.invoke(args=["model", "show", "2"]).output)
    assert shown["params"]["discovery"]["l2"] == 50
    assert runner.invoke(args=["model", "promote", "2"]).output.strip() == "model version 2 is now champion"
    scored = runner.invoke(args=["model", "score", "2", str(shop.contacts["uk3"].id), "--limit", "2"])
    assert scored.exit_code == 0 and "SKU-" in scored.output
    assert runner.invoke(args=["model", "promote", "99"]).exit_code != 0


def test_the_model_api(app: Flask, session: Session, shop: Shop, make_api_client: Any, redis: Any) -> None:
    version = training.train(
        session, app.extensions["mailramp"].blobs(), kind="blend", end=NOW, evaluate=False
    )
    viewer, approver = make_api_client("viewer"), make_api_client("approver")

    listed = viewer.get("/api/v1/models").get_json()
    assert [v["id"] for v in listed["versions"]] == [version.id]
    assert listed["versions"][0]["role"] == "champion"
    one = viewer.get(f"/api/v1/models/{version.id}").get_json()
    assert one["sha256"] == version.sha256 and one["pinned_by_rollouts"] == []
    assert viewer.get("/api/v1/models/999").status_code == 404

    drift = viewer.get(f"/api/v1/models/{version.id}/drift").get_json()
    assert drift["level"] in ("stable", "watch", "drifted")
    assert "country_psi" in drift["drift"]["population"]
    assert viewer.post(f"/api/v1/models/{version.id}/drift").status_code == 403
    assert make_api_client("marketer").post(f"/api/v1/models/{version.id}/drift").status_code == 200

    uk3 = shop.contacts["uk3"].id
    preview = viewer.get(
        f"/api/v1/models/{version.id}/recommendations/{uk3}?limit=3&category=garden"
    ).get_json()
    assert len(preview["recommendations"]) >= 1
    assert {r["category"] for r in preview["recommendations"]} == {"garden"}
    bad = viewer.get(f"/api/v1/models/{version.id}/recommendations/{uk3}?max_price=cheap")
    assert bad.status_code == 400 and bad.get_json()["where"] == "max_price"

    assert viewer.post("/api/v1/models", json={"kind": "blend"}).status_code == 403
    queued = approver.post("/api/v1/models", json={"kind": "ease", "params": {"l2": 10}, "window_days": 30})
    assert queued.status_code == 202
    job = queues.queue(app.extensions["mailramp"], queues.TRAINING).fetch_job(queued.get_json()["job_id"])
    assert job is not None and job.args[0] == "ease" and job.args[2] == "approver@example.com"
    assert approver.post("/api/v1/models", json={"kind": "magic"}).get_json()["where"] == "kind"

    promoted = approver.post(f"/api/v1/models/{version.id}/promote", json={"role": "challenger"})
    assert promoted.get_json()["role"] == "challenger"
    assert approver.post(f"/api/v1/models/{version.id}/promote", json={"role": "boss"}).status_code == 400
    assert (
        "/models/{version_id}/recommendations/{contact_id}"
        in viewer.get("/api/v1/openapi.json").get_json()["paths"]
    )


def test_the_training_job_uses_the_installed_runtime(app: Flask, shop: Shop) -> None:
    version_id = training.train_job("popularity", {}, "scheduler")
    with app.extensions["mailramp"].session() as session:
        from campaigns.recommender import registry

        version = registry.get(session, version_id)
        assert (version.status, version.trained_by) == ("ready", "scheduler")
        assert app.extensions["mailramp"].blobs().stat(version.artifact_path).sha256 == version.sha256
