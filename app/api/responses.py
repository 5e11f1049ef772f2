"""The bodies of the API's success answers, as pydantic models: `route(..., response=Model)` writes
them into the OpenAPI document, and the schemathesis test checks every answer against them. Fields
the serializers always write are required; times are ISO 8601 text."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class UserOut(BaseModel):
    id: int
    email: str
    name: str | None
    role: str
    active: bool
    created_at: str


class UserList(BaseModel):
    users: list[UserOut]


class TokenOut(BaseModel):
    id: int
    name: str | None
    prefix: str
    user_id: int
    user_email: str
    revoked: bool
    created_at: str
    last_used_at: str | None


class TokenList(BaseModel):
    tokens: list[TokenOut]


class NewToken(BaseModel):
    token: str = Field(description="shown once: send it as `Authorization: Bearer <token>`")
    user_id: int
    role: str


class ContactOut(BaseModel):
    id: int
    email: str
    name: str | None
    country: str | None
    timezone: str | None
    consent: Any
    status: str
    external_id: str | None
    attributes: Any
    created_at: str
    updated_at: str
    unsubscribed_at: str | None


class ContactPage(BaseModel):
    contacts: list[ContactOut]
    total: int
    next_after: int | None = Field(description="give it as `after` for the next page; null: the last page")


class SegmentContacts(BaseModel):
    contacts: list[ContactOut]
    next_after: int | None


class SuppressionOut(BaseModel):
    id: int
    email: str
    reason: str
    created_at: str


class SuppressionPage(BaseModel):
    suppressions: list[SuppressionOut]
    total: int
    next_after: int | None


class CampaignOut(BaseModel):
    id: int
    name: str
    status: str
    template_id: int | None
    segment_id: int | None
    rollout_id: int | None
    subject: str | None
    from_email: str | None
    from_name: str | None
    send_at: str | None
    cron: str | None
    timezone: str | None
    wave_size: int | None
    recommendation_rules: Any
    series: Any
    parent_id: int | None
    created_at: str


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


class Delivery(BaseModel):
    sent: int
    queued: int
    throttled: int
    deferred: int
    quiet_hours: int = Field(description="queued until the contact's quiet hours end (local time)")
    failed: int


class FailureReason(BaseModel):
    reason: str = Field(description="the kind of reason, e.g. `550 refused by the receiving server`")
    count: int
    example: str = Field(description="one full error of this kind")


class WaveProgress(BaseModel):
    id: int
    number: int
    status: str
    planned: int
    batches: int
    limit: int | None
    scored_at: str | None
    scoring_error: str | None = Field(description="an AI wave waits while this is set")


class CampaignProgress(BaseModel):
    states: dict[str, int] = Field(description="sends per ledger state")
    total: int
    done: int
    fraction: float | None
    delivery: Delivery
    failures: list[FailureReason] = Field(description="failed sends by kind of reason, most frequent first")
    skips: list[FailureReason] = Field(
        description="skipped sends by kind of reason (e.g. `frequency cap: 2 in 24 h`), most frequent first"
    )
    waves: list[WaveProgress]


class CampaignWithProgress(CampaignOut):
    progress: CampaignProgress


class ItemOut(BaseModel):
    id: int
    sku: str
    name: str
    url: str | None
    price: float | None
    image_url: str | None
    category: str | None
    enabled: bool
    created_at: str


class ItemPage(BaseModel):
    items: list[ItemOut]
    total: int
    next_after: int | None


class CategoryCount(BaseModel):
    category: str | None
    items: int


class CategoryList(BaseModel):
    categories: list[CategoryCount]


class TemplateOut(BaseModel):
    id: int
    name: str
    subject: str | None
    layout_html: str | None
    control_html: str | None
    ai_html: str | None
    updated_at: str


class TemplateList(BaseModel):
    templates: list[TemplateOut]


class TemplatePreview(BaseModel):
    subject: str
    html: str
    arm: str


class SegmentOut(BaseModel):
    id: int
    name: str
    description: str | None
    rules: Any
    created_at: str
    updated_at: str
    count: int | None = Field(None, description="contacts matching the rules now (single segments)")
    sendable: int | None = Field(None, description="of which can be mailed now (single segments)")


class SegmentList(BaseModel):
    segments: list[SegmentOut]


class WebhookOut(BaseModel):
    id: int
    name: str | None
    url: str
    format: str
    events: list[str]
    active: bool
    secret_hint: str
    created_by: str | None
    created_at: str | None


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]
    failed_deliveries: int


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret, shown once")


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event: str
    rollout_id: int | None
    decision_id: int | None
    status: str
    attempts: int
    response_code: int | None
    last_error: str | None
    created_at: str | None
    last_attempt_at: str | None
    delivered_at: str | None
    payload: Any = Field(None, description="only for a single delivery")


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]


class EventAccepted(BaseModel):
    accepted: bool
    send_id: int


class EspAnswer(BaseModel):
    accepted: int | None = Field(None, description="reports matched to a send and queued")
    unmatched: int | None = Field(None, description="reports naming no send of this installation")
    confirmed: bool | None = Field(None, description="an SNS subscription confirmation was followed")


class SignupFormOut(BaseModel):
    id: int
    slug: str
    name: str
    wording: str
    double_opt_in: bool
    attributes: Any
    from_email: str | None
    confirm_subject: str | None
    confirm_text: str | None
    url: str = Field(description="the public page")
    created_at: str


class SignupFormList(BaseModel):
    forms: list[SignupFormOut]


class ApprovalOut(BaseModel):
    id: int
    rollout_id: int
    action: str
    target_stage: int | None
    status: str
    requested_by: str
    requested_at: str
    reason: str | None
    decided_by: str | None
    decided_at: str | None
    decision_id: int | None


class ApprovalList(BaseModel):
    approvals: list[ApprovalOut]


class ApprovalDecided(BaseModel):
    approval: ApprovalOut
    audit: dict[str, Any] | None = Field(None, description="the rollout transition, when approved")
