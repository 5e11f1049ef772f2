"""Tracking endpoints: verify the signed token, push the raw event to Redis, answer at once."""

from __future__ import annotations

from flask import Blueprint

tracking = Blueprint("tracking", __name__, url_prefix="/t")
