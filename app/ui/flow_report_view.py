"""The report section of a flow's page: `flow_report_context(session, flow_id)` gives what
`ui/flows/_report.html` needs (include it on the flow's detail page with that context)."""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy.orm import Session

from campaigns.audience.demo_scope import is_demo_address
from campaigns.flows.report import flow_report
from models import Flow


def flow_report_context(session: Session, flow_id: int) -> dict[str, Any]:
    """{"flow_report": per step and arm (campaigns.flows.report), "flow_report_csv_url", "simulated"}."""
    report = flow_report(session, flow_id)
    flow = session.get(Flow, flow_id)
    steps = ((flow.definition or {}).get("steps") or []) if flow is not None else []
    senders = [s.get("from_email", "") for s in steps if isinstance(s, dict)]
    return {
        "flow_report": report,
        "flow_report_csv_url": url_for("api.flows_report_csv", flow_id=flow_id),
        "simulated": any(isinstance(s, str) and is_demo_address(s) for s in senders),
    }
