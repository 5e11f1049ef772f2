"""Reports per flow: per send step and arm, with each AI step's rollout (campaigns.flows.report)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, stream_with_context
from pydantic import BaseModel, Field

from app.api.spec import route
from app.extensions import db
from campaigns.flows.records import get_flow
from campaigns.flows.report import flow_report, flow_report_csv
from models import Role


class FlowStepReport(BaseModel):
    step_id: str
    in_current_version: bool = Field(description="false: only an older version of the flow had this step")
    template_id: int | None
    ai_content: bool
    total: dict[str, Any] = Field(description="sent, opens, clicks, conversions, unsubscribes... and rates")
    arms: list[dict[str, Any]] = Field(description="the same counts per arm: treatment, control, holdout")
    rollout: dict[str, Any] | None = Field(
        description="an AI step's rollout: state, stage, exposure, latest decision; null otherwise"
    )


class FlowReport(BaseModel):
    flow: dict[str, Any]
    steps: list[FlowStepReport]


@route(
    "/flows/<int:flow_id>/report",
    "GET",
    role=Role.viewer,
    summary="A flow's report: per send step and arm, sends and engagement, each AI step's rollout",
    tag="flows",
    response=FlowReport,
)
def flows_report(flow_id: int) -> Response:
    return jsonify(flow_report(db(), flow_id))


@route(
    "/flows/<int:flow_id>/report.csv",
    "GET",
    role=Role.viewer,
    content="text/csv",
    summary="A flow's report as CSV, one line per step and arm; cells never run as formulas",
    tag="flows",
)
def flows_report_csv(flow_id: int) -> Response:
    get_flow(db(), flow_id)
    response = Response(stream_with_context(flow_report_csv(db(), flow_id)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="flow-{flow_id}-report.csv"'
    return response
