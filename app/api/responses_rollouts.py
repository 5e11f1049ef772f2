"""The bodies of the rollout, decision and plan answers, as pydantic models (see app.api.responses):
the rollout status with its gates, maturation and forecast, transitions, the audit log, arms,
shadow reports, decisions with their evidence, per-arm metrics and the workspace's default plan.
Evidence, targeting and guardrails are open mappings; the fields the engine always writes are named."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.api.responses import ApprovalOut, CampaignOut


class GatesOut(BaseModel):
    min_recipients_per_arm: int
    min_events: int
    min_duration_hours: float
    primary_metric: str | None
    guardrails: list[str] | None


class StageOut(BaseModel):
    name: str
    kind: str = Field(description="shadow, dark, internal, beta or percent")
    exposure_bp: int
    unprotect_segments: list[int]
    gates: GatesOut


class ForecastStage(BaseModel):
    name: str
    exposure_bp: int
    gate_recipients: int
    treatment_per_send: float
    sends: int | None
    days: float | None
    reached: bool
    smallest_harm_detectable: float | None
    smallest_unsubscribe_ratio_detectable: float | None


class ForecastWatch(BaseModel):
    holdout_bp: int
    sends_to_catch_x3_unsubscribes: int | None = Field(
        description="sends after a tripling of unsubscribes starts (after completion) until the watch rolls it "
        "back in 90% of cases (simulated on the audience's numbers), with this holdout; null: not within 52 sends"
    )
    holdout_bp_within_3_sends: int | None = Field(
        description="the smallest holdout (5% to 50%, in steps of 5%) that would catch it within 3 sends; "
        "a rollout created without a holdout gets this one (5% when null)"
    )


class Forecast(BaseModel):
    """What the plan can learn on this audience, and how fast it reaches everyone."""

    inputs: dict[str, Any] = Field(description="the audience, cadence, baselines and harm it assumes")
    power: float
    lag_sends: int
    stages: list[ForecastStage]
    sends_to_everyone: int | None
    days_to_everyone: float | None
    expected_exposed_if_harmful: float | None
    harm_caught_after_sends: int | None = None
    sends_to_complete: int | None = Field(
        None, description="sends until the last stage has the power to complete (no completion on noise)"
    )
    days_to_complete: float | None = None
    watch: ForecastWatch | None = Field(None, description="how fast the watch after 100% catches a harm")
    words: str = Field(description="what the plan can and cannot learn, in plain words")
    mode: str | None = Field(None, description="learn or protect, when the plan was sized")
    learnable_primary: bool | None = None


class CampaignCreated(CampaignOut):
    rollout_forecast: Forecast | None = Field(
        None,
        description="a campaign with a rollout: the plan's forecast on its audience, before anything is sent",
    )


class RolloutSummary(BaseModel):
    id: int
    name: str
    series: str | None
    state: str
    killed: bool
    stage_index: int
    stage: dict[str, Any] | None = Field(description="the current stage as stored")
    exposure_bp: int
    holdout_bp: int
    plan: str
    manual_plan: bool
    model_version_id: int | None
    updated_at: str | None


class RolloutList(BaseModel):
    rollouts: list[RolloutSummary]


class GateObservation(BaseModel):
    recipients_per_arm: dict[str, int]
    events: int
    stage_started_at: str | None


class GatesNow(BaseModel):
    observed: GateObservation
    unmet: list[str] = Field(description="each gate not yet met, in words; empty: the stage may be left")


class Maturation(BaseModel):
    metric_event: str
    window_hours: float
    windows_hours: dict[str, float]
    stage_last_sent_at: str | None
    stage_matures_at: str | None
    matured: bool


class ReportSegment(BaseModel):
    id: int
    name: str | None
    excluded: bool


class NextAction(BaseModel):
    action: str
    role: str
    to_state: str
    to_stage: int
    needs_approval: bool
    blocked: list[str]


class FreezeOut(BaseModel):
    start: str
    end: str
    why: str


class RolloutStatus(RolloutSummary):
    salt: str
    stages: list[StageOut]
    targeting: dict[str, Any] | None
    primary_metric: str | None
    guardrails: dict[str, Any] | None
    decision_mode: str | None
    approval_from_bp: int | None
    freeze_windows: list[dict[str, Any]] | None
    active_freeze: FreezeOut | None
    stage_started_at: str | None
    killed_at: str | None
    previous_model_version_id: int | None
    created_by: str | None
    created_at: str | None
    gates: GatesNow | None = Field(description="while shadowing, ramping or paused")
    maturation: Maturation
    forecast: Forecast | None = Field(description="null when the plan cannot be read")
    report_segments: list[ReportSegment]
    next_actions: list[NextAction]
    pending_approvals: list[ApprovalOut]
    completed_without_evidence: bool


class AuditOut(BaseModel):
    id: int
    rollout_id: int
    at: str
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    from_stage: int | None
    to_stage: int | None
    reason: str | None
    evidence: dict[str, Any] | None


class AuditList(BaseModel):
    audit: list[AuditOut]


class RolloutTransitioned(RolloutStatus):
    audit: AuditOut | None = Field(None, description="the audit row of the transition (not for kill)")


class ApprovalAsked(BaseModel):
    approval_required: str = Field(description="why four eyes are needed")
    approval: ApprovalOut


class ArmOut(BaseModel):
    contact_id: int
    arm: str
    bucket: int
    shadow: bool
    forced: bool
    failed: str = Field(description="non-empty: assignment failed closed, with this error")
    state: str
    stage_index: int


class Percentiles(BaseModel):
    p50: float | None
    p95: float | None
    max: float | None


class ShadowStage(BaseModel):
    stage_index: int | None
    renders: int
    control_sent: int
    errors: int
    error_rate: float | None
    ai_latency_ms: Percentiles
    control_render_ms: Percentiles
    with_recommendations: int
    distinct_items: int
    distinct_contents: int


class ShadowReport(BaseModel):
    stages: list[ShadowStage]


class DecisionOut(BaseModel):
    id: int
    rollout_id: int
    at: str | None
    stage_index: int | None
    outcome: str = Field(description="hold, advance, rollback, pause, exclude_segment or include_segment")
    applied: bool
    reasons: list[str]
    summary: str | None = Field(description="one plain sentence: evidence.summary")
    evidence: dict[str, Any] | None = Field(
        None, description="the numbers behind it: config, primary, guardrails, health, summary..."
    )


class DecisionList(BaseModel):
    decisions: list[DecisionOut]


class ArmMetrics(BaseModel):
    """Counts and rates of one arm (campaigns.reports.arm_report); rates are per sent email."""

    arm: str
    sent: int
    failed: int
    delivered: int = Field(description="sent and not bounced")
    delivered_reported: int = Field(description="delivery events an MTA or ESP reported")
    open: int
    open_machine: int
    click: int
    click_bot: int
    conversion: int
    unsubscribe: int
    complaint: int
    bounce: int
    revenue: float
    open_rate: float | None
    click_rate: float | None
    conversion_rate: float | None
    unsubscribe_rate: float | None
    complaint_rate: float | None
    bounce_rate: float | None
    revenue_per_recipient: float | None
    send_error_rate: float | None
    render_mean_ms: float | None
    render_p95_ms: float | None


class StageArmMetrics(ArmMetrics):
    stage_index: int | None


class RolloutMetrics(BaseModel):
    rollout_id: int
    segment: str
    stages: list[StageArmMetrics]
    arms: list[ArmMetrics]
    segments: list[str] = Field(description="the segment labels with metrics of their own")


class DefaultPlan(BaseModel):
    stages: list[StageOut]
    holdout_bp: int
