"""Machine opens and bot clicks: rules over the request alone (pure, no I/O).

An open pixel or a tracked link is fetched by many things that are not the recipient. Counting them
as people inflates open and click rates and, worse, does it unevenly between arms (a scanner that
follows every link of a longer AI-personalized email adds more "clicks" to the treatment). So the
ingest worker stores every event but flags these, and the statistics use human events only.

Opens are **machine** opens when, in this order:

1. ``apple_mpp``: Apple Mail Privacy Protection. Apple's proxy prefetches every image of every
   message as soon as it reaches the device, whether or not it is read. It fetches from Apple's
   network (17.0.0.0/8) with a bare ``Mozilla/5.0`` user agent; either one is enough.
2. ``google_image_proxy``: Gmail serves images through ``GoogleImageProxy`` (``ggpht.com``): the fetch
   is cached and shared, so it cannot be attributed to one reading. Likewise ``YahooMailProxy``.
3. ``prefetch``: any fetch within ``PREFETCH_SECONDS`` (2 s) of delivery: no person opens that fast;
   security gateways and clients that download on receipt do.
4. ``empty_user_agent`` or a ``known_bot`` user agent (crawlers, HTTP libraries, headless browsers).
   Scanner names are not used for opens: Outlook desktop fetches images as ``Microsoft Office``.

Clicks are **bot** clicks when, in this order:

1. ``head_request``: a HEAD request (scanners check a link without following it; browsers never do).
2. ``too_fast``: a click within ``SCANNER_SECONDS`` (10 s) of delivery: link scanners (Microsoft
   Safe Links, Mimecast, Proofpoint, Barracuda...) follow every link seconds after the message arrives.
3. ``scanner_user_agent``: a user agent naming a known scanner, or a crawler, HTTP library or headless
   browser (``known_bot``), or none at all (``empty_user_agent``).

Everything else is human (reason ``""``). A missing delivery time (``None``) skips the timing rules.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

PREFETCH_SECONDS = 2.0
SCANNER_SECONDS = 10.0

_APPLE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)
_APPLE_MPP_UA = "mozilla/5.0"
_IMAGE_PROXIES = re.compile(r"googleimageproxy|ggpht\.com|yahoomailproxy", re.IGNORECASE)
_BOTS = re.compile(
    r"bot\b|bot/|crawler|spider|slurp|python-requests|python-urllib|aiohttp|httpx|curl/|wget/|"
    r"go-http-client|java/|okhttp|libwww|headlesschrome|phantomjs|scrapy",
    re.IGNORECASE,
)
_SCANNERS = re.compile(
    r"barracuda|mimecast|proofpoint|urldefense|safelinks|safe links|office existence discovery|"
    r"symantec|messagelabs|forcepoint|trend ?micro|sophos|fireeye|zscaler|ironport|cisco|"
    r"checkpoint|fortinet|fortiguard|appriver|spamtitan|hornetsecurity|vadesecure|bingpreview",
    re.IGNORECASE,
)


@lru_cache(maxsize=4096)
def _apple_ip(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return False
    return any(address in network for network in _APPLE_NETWORKS)


def classify_open(user_agent: str, ip: str, seconds_since_delivery: float | None) -> tuple[bool, str]:
    """(machine?, reason) for an open-pixel fetch; the rules are in the module docstring."""
    ua = (user_agent or "").strip()
    if ua.lower() == _APPLE_MPP_UA or _apple_ip(ip or ""):
        return True, "apple_mpp"
    if _IMAGE_PROXIES.search(ua):
        return True, "google_image_proxy" if "yahoo" not in ua.lower() else "yahoo_image_proxy"
    if seconds_since_delivery is not None and seconds_since_delivery < PREFETCH_SECONDS:
        return True, "prefetch"
    if not ua:
        return True, "empty_user_agent"
    if _BOTS.search(ua):
        return True, "known_bot"
    return False, ""


def classify_click(user_agent: str, method: str, seconds_since_delivery: float | None) -> tuple[bool, str]:
    """(bot?, reason) for a tracked-link request; the rules are in the module docstring."""
    if (method or "GET").strip().upper() == "HEAD":
        return True, "head_request"
    if seconds_since_delivery is not None and seconds_since_delivery < SCANNER_SECONDS:
        return True, "too_fast"
    ua = (user_agent or "").strip()
    if not ua:
        return True, "empty_user_agent"
    if _SCANNERS.search(ua):
        return True, "scanner_user_agent"
    if _BOTS.search(ua):
        return True, "known_bot"
    return False, ""
