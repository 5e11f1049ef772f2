"""The model registry page: versions with metrics, drift and pins; approvers promote, marketers cannot."""

from __future__ import annotations

from flask import Flask

from app.auth import create_user
from app.extensions import db
from models import ModelVersion, Role

PASSWORD = "correct horse battery staple"


def test_registry_lists_and_promotes(app: Flask) -> None:
    with app.test_request_context():
        create_user("a@example.com", PASSWORD, Role.approver)
        create_user("m@example.com", PASSWORD, Role.marketer)
        db().add(ModelVersion(name="blend nov", kind="blend", status="ready", role="champion",
                              metrics={"ndcg_at_10": 0.21}, drift={"item_psi": 0.03}))  # fmt: skip
        db().add(ModelVersion(name="ease dec", kind="ease", status="ready", role="challenger"))
        db().commit()
        challenger = db().query(ModelVersion).filter_by(name="ease dec").one().id
    marketer = app.test_client()
    marketer.post("/login", data={"email": "m@example.com", "password": PASSWORD})
    page = marketer.get("/models").get_data(as_text=True)
    assert "ndcg at 10" in page and "0.21" in page and "item psi" in page and "Not measured yet" in page
    assert "Make champion" not in page
    assert marketer.post(f"/models/{challenger}/promote", data={"role": "champion"}).status_code == 403
    approver = app.test_client()
    approver.post("/login", data={"email": "a@example.com", "password": PASSWORD})
    approver.post(f"/models/{challenger}/promote", data={"role": "champion"})
    with app.app_context():
        assert db().get(ModelVersion, challenger).role == "champion"  # type: ignore[union-attr]
