"""The floor the tracking endpoints are measured against: a bare Flask app that checks an HMAC over
the token and does one Redis XADD, nothing else. Served by gunicorn with the same settings as the
real app (`gunicorn 'bench.tracking_bare:create_app()'`); BENCH_REDIS_URL names the Redis."""

from __future__ import annotations

import hashlib
import hmac
import os
import time

from flask import Flask, Response, abort, redirect
from redis import Redis
from werkzeug.wrappers import Response as WerkzeugResponse

PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
STREAM = "bench:bare-events"
KEY = b"bench-bare-key"


def sign(payload: str) -> str:
    return payload + "." + hmac.new(KEY, payload.encode(), hashlib.sha256).hexdigest()[:32]


def create_app() -> Flask:
    app = Flask(__name__)
    redis = Redis.from_url(os.environ["BENCH_REDIS_URL"])

    def verified(token: str) -> str:
        payload, _, mac = token.rpartition(".")
        good = hmac.new(KEY, payload.encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(mac, good):
            abort(404)
        redis.xadd(STREAM, {"e": f"{payload}|{time.time()}"})
        return payload

    @app.route("/o/<token>")
    def pixel(token: str) -> Response:
        verified(token)
        return Response(PIXEL, mimetype="image/gif", headers={"Cache-Control": "no-store, max-age=0"})

    @app.route("/c/<token>")
    def click(token: str) -> WerkzeugResponse:
        verified(token)
        return redirect("https://shop.example/best", code=302)

    return app
