"""Endpoints for operators: `/metrics` in the Prometheus text format.

It reports this host's process counters (every gunicorn and rq worker process writing to
`PROMETHEUS_MULTIPROC_DIR`) and the installation's state read at scrape time (queues, ingest lag,
events per arm, decisions). With `MAILRAMP_METRICS_TOKEN` set, a scrape must send it as a bearer token.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, request

from app.extensions import get_runtime

ops = Blueprint("ops", __name__)


@ops.get("/metrics")
def metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from campaigns.ops.signals import process_registry
    from campaigns.ops.signals_cluster import ClusterCollector

    token = current_app.config.get("METRICS_TOKEN")
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), str(token).encode()):
            abort(401)
    cluster = CollectorRegistry()
    cluster.register(ClusterCollector(get_runtime()))
    body = generate_latest(process_registry()) + generate_latest(cluster)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
