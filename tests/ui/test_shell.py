"""The shell in a real browser: login, navigation by role, users admin, tokens, and a viewer who can
look at everything and change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import Users, screenshot


def test_admin_adds_a_user_who_then_logs_in(login: Callable[[str], Any], new_page: Callable[[], Any]) -> None:
    page = login("admin")
    screenshot(page, "dashboard-empty")
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    page.get_by_role("textbox", name="Email", exact=True).fill("dana@example.com")
    page.get_by_label("Name").fill("Dana")
    page.get_by_label("Role", exact=True).select_option("approver")
    page.get_by_label("Initial password").fill("a fine long password")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text("Created dana@example.com (approver)")
    screenshot(page, "users")

    other = new_page()
    other.goto("/")
    other.get_by_label("Email").fill("dana@example.com")
    other.get_by_label("Password").fill("a fine long password")
    other.get_by_role("button", name="Log in").click()
    expect(other.locator(".role-badge")).to_have_text("approver")


def test_wrong_password_then_token(
    login: Callable[[str], Any], new_page: Callable[[], Any], users: Users
) -> None:
    page = new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(users.emails["marketer"])
    page.get_by_label("Password").fill("nope")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
    screenshot(page, "login")

    page = login("marketer")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("What will use it").fill("nightly export")
    page.get_by_role("button", name="Issue token").click()
    token = page.get_by_role("textbox", name="Token").input_value()
    assert token.startswith("mr_")
    page.goto("/settings/tokens")
    assert token not in page.content()
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("Revoked")


def test_viewer_sees_no_forms_and_posts_are_refused(login: Callable[[str], Any], live_server: str) -> None:
    page = login("viewer")
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    expect(page.get_by_role("link", name="API tokens")).to_have_count(0)
    assert page.locator("main form").count() == 0
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    refused = page.request.post(f"{live_server}/settings/tokens", form={"name": "x", "csrf_token": token})
    assert refused.status == 403
    response = page.goto("/settings/users")
    assert response is not None and response.status == 403
