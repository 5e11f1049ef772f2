"""Machine opens and bot clicks: each documented rule, and real browsers left alone."""

from __future__ import annotations

import pytest

from campaigns.events.classify import classify_click, classify_open

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"


@pytest.mark.parametrize(
    "ua, ip, seconds, expected",
    [
        ("Mozilla/5.0", "203.0.113.9", 3600.0, (True, "apple_mpp")),  # MPP's bare user agent
        (IPHONE, "17.58.101.3", 3600.0, (True, "apple_mpp")),  # Apple's 17.0.0.0/8 network
        (GMAIL, "66.249.84.1", 3600.0, (True, "google_image_proxy")),
        (
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy",
            "1.2.3.4",
            60.0,
            (True, "yahoo_image_proxy"),
        ),
        (CHROME, "198.51.100.7", 1.2, (True, "prefetch")),  # within 2 s of delivery
        ("", "198.51.100.7", 600.0, (True, "empty_user_agent")),
        ("python-requests/2.32", "198.51.100.7", 600.0, (True, "known_bot")),
        (CHROME, "198.51.100.7", 600.0, (False, "")),
        (OUTLOOK, "198.51.100.7", 600.0, (False, "")),  # Outlook desktop opens are people
        (IPHONE, "not-an-ip", None, (False, "")),  # no delivery time: timing rule skipped
    ],
)
def test_classify_open(ua: str, ip: str, seconds: float | None, expected: tuple[bool, str]) -> None:
    assert classify_open(ua, ip, seconds) == expected


@pytest.mark.parametrize(
    "ua, method, seconds, expected",
    [
        (CHROME, "HEAD", 3600.0, (True, "head_request")),
        (CHROME, "GET", 4.0, (True, "too_fast")),  # link scanners follow links seconds after delivery
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "GET", 3600.0, (True, "scanner_user_agent")),
        ("Mimecast URL Protect", "GET", 3600.0, (True, "scanner_user_agent")),
        ("Microsoft Office Existence Discovery", "GET", 3600.0, (True, "scanner_user_agent")),
        ("Mozilla/5.0 (compatible; bingbot/2.0)", "GET", 3600.0, (True, "known_bot")),
        ("curl/8.5.0", "GET", 3600.0, (True, "known_bot")),
        ("", "GET", 3600.0, (True, "empty_user_agent")),
        (CHROME, "get", 45.0, (False, "")),
        (IPHONE, "POST", None, (False, "")),
    ],
)
def test_classify_click(ua: str, method: str, seconds: float | None, expected: tuple[bool, str]) -> None:
    assert classify_click(ua, method, seconds) == expected
