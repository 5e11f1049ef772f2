"""Users and tokens over the API follow the users page's rules (`app.accounts`)."""

from __future__ import annotations

from typing import Any


def test_admin_manages_users_and_tokens_over_the_api(api: Any, make_api_client: Any) -> None:
    created = api.post(
        "/api/v1/users", json={"email": "Vi@Example.com", "role": "viewer", "password": "long password"}
    )
    assert created.status_code == 201 and created.get_json()["email"] == "vi@example.com"
    assert (
        api.post(
            "/api/v1/users", json={"email": "x@example.com", "role": "boss", "password": "long password"}
        ).get_json()["where"]
        == "role"
    )
    user_id = created.get_json()["id"]
    token = api.post("/api/v1/tokens", json={"name": "dashboards", "user_id": user_id})
    assert token.status_code == 201 and token.get_json()["role"] == "viewer"
    viewer_token = token.get_json()["token"]
    headers = {"Authorization": f"Bearer {viewer_token}"}
    assert api.client.get("/api/v1/campaigns", headers=headers).status_code == 200
    assert api.client.post("/api/v1/tokens", json={"name": "x"}, headers=headers).status_code == 403
    me = next(u for u in api.get("/api/v1/users").get_json()["users"] if u["email"] == api.email)
    assert api.patch(f"/api/v1/users/{me['id']}", json={"role": "viewer"}).status_code == 400  # no lock-out
    assert api.patch(f"/api/v1/users/{user_id}", json={"active": False}).get_json()["active"] is False
    assert api.client.get("/api/v1/campaigns", headers=headers).status_code == 401


def test_marketer_sees_and_revokes_only_own_tokens(api: Any, make_api_client: Any) -> None:
    marketer = make_api_client("marketer")
    other = api.post("/api/v1/tokens", json={"name": "admin's"}).get_json()
    admin_id = next(u["id"] for u in api.get("/api/v1/users").get_json()["users"] if u["email"] == api.email)
    assert (
        marketer.post("/api/v1/tokens", json={"name": "for someone else", "user_id": admin_id}).status_code
        == 403
    )
    listed = marketer.get("/api/v1/tokens").get_json()["tokens"]
    assert {t["user_email"] for t in listed} == {"marketer@example.com"}
    admin_tokens = [t for t in api.get("/api/v1/tokens").get_json()["tokens"] if t["name"] == "admin's"]
    assert marketer.post(f"/api/v1/tokens/{admin_tokens[0]['id']}/revoke").status_code == 403
    assert other["token"].startswith("mr_")
