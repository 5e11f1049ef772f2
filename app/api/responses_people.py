"""The bodies of the contact, privacy, model, import and sending answers, as pydantic models (see
app.api.responses): a contact with its sends, consent history, the person-data export, erasure
reports, model drift and previews, import runs, waves, results per arm and test sends."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.api.responses import ContactOut


class SendHistory(BaseModel):
    send_id: int
    campaign_id: int
    campaign: str | None
    wave_id: int | None
    rollout_id: int | None
    stage_index: int | None
    arm: str
    content: str = Field(description="ai, control or fallback")
    state: str
    queued_at: str | None
    sent_at: str | None
    opened_at: str | None
    clicked_at: str | None
    converted_at: str | None
    revenue: float | None
    unsubscribed_at: str | None
    error: str | None


class ContactWithSends(ContactOut):
    suppressed: bool
    sends: list[SendHistory] = Field(description="newest first")


class InteractionOut(BaseModel):
    id: int
    kind: str
    item_id: int
    sku: str
    name: str
    category: str | None
    quantity: float
    value: float
    occurred_at: str
    reference: str | None


class InteractionList(BaseModel):
    interactions: list[InteractionOut]


class ConsentRecordOut(BaseModel):
    at: str
    state: str = Field(description="granted, pending or withdrawn")
    method: str
    source: str
    ip: str
    user_agent: str
    wording: str
    evidence: dict[str, Any] | None
    actor: str


class ConsentHistory(BaseModel):
    contact_id: int
    history: list[ConsentRecordOut] = Field(description="oldest first")


class PersonData(BaseModel):
    """Everything held about one person (campaigns.privacy.export)."""

    format: str
    profile: dict[str, Any]
    attributes: Any
    suppressed: str | None = Field(description="the suppression reason, when the address is suppressed")
    consent_history: list[ConsentRecordOut]
    sends: list[dict[str, Any]]
    events: list[dict[str, Any]]
    interactions: list[dict[str, Any]]
    recommendations: list[dict[str, Any]]
    bounces: list[dict[str, Any]]
    shadow_renders: list[dict[str, Any]]
    audit_pseudonym: str


class ErasureReport(BaseModel):
    contact_ref: str = Field(description="the pseudonym the audit log keeps")
    sends: int
    events: int
    interactions: int
    recommendations: int
    shadow_renders: int
    consent_records: int
    journal_entries: int
    stream_entries: int


class TrainingQueued(BaseModel):
    job_id: str
    kind: str


class DriftOut(BaseModel):
    version_id: int
    drift: dict[str, Any] | None = Field(description="country mix and price PSI, unknown contacts and items")
    level: str | None


class RecommendationOut(BaseModel):
    item_id: int
    sku: str
    name: str
    url: str | None
    price: float | None
    image_url: str | None
    category: str | None
    score: float
    reason: str = Field(description="why it is recommended, in words")


class RecommendationPreview(BaseModel):
    version_id: int
    contact_id: int
    recommendations: list[RecommendationOut]


class ImportRunOut(BaseModel):
    id: int
    kind: str
    filename: str | None
    status: str
    rows_total: int
    rows_imported: int
    rows_failed: int
    rows_skipped: int
    errors_shown: int
    created_by: str | None
    created_at: str
    finished_at: str | None


class ImportRunList(BaseModel):
    imports: list[ImportRunOut]


class WaveStarted(BaseModel):
    wave_id: int
    number: int
    planned: int
    batches: int


class ArmResultOut(BaseModel):
    arm: str
    planned: int
    sent: int
    failed: int
    skipped: int
    pending: int
    delivered: int
    bounces: int
    opens: int = Field(description="unique human opens")
    machine_opens: int
    clicks: int = Field(description="unique human clicks")
    bot_clicks: int
    conversions: int
    revenue: float
    unsubscribes: int
    complaints: int
    delivery_rate: float | None
    open_rate: float | None
    click_rate: float | None
    conversion_rate: float | None
    revenue_per_recipient: float | None
    unsubscribe_rate: float | None
    complaint_rate: float | None
    bounce_rate: float | None


class CampaignResults(BaseModel):
    campaign_id: int
    arms: list[ArmResultOut]


class SeedResultOut(BaseModel):
    email: str
    arm: str = Field(description="control or AI (both: not sent, see error)")
    accepted: bool
    error: str
    note: str


class SeedSends(BaseModel):
    results: list[SeedResultOut]
    sent: int


class RowError(BaseModel):
    row: int = Field(description="the file line (the header is 1)")
    field: str | None
    error: str


class ImportRunDetail(ImportRunOut):
    errors: list[RowError] = Field(description="the first 1,000 problems")


class ModelVersionOut(BaseModel):
    id: int
    name: str | None
    kind: str
    status: str = Field(description="training, ready or failed")
    role: str | None = Field(description="champion, challenger or empty")
    params: dict[str, Any] | None
    train_start: str | None
    train_end: str | None
    n_rows: int | None
    metrics: dict[str, Any] | None
    drift: dict[str, Any] | None
    sha256: str | None
    trained_by: str | None
    error: str | None
    created_at: str
    pinned_by_rollouts: list[int]


class ModelVersionList(BaseModel):
    versions: list[ModelVersionOut]


class AuditEntryOut(BaseModel):
    id: int
    at: str
    actor: str
    via: str
    action: str
    object_type: str
    object_id: str | None
    summary: str | None
    before: Any
    after: Any


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_before: int | None = Field(description="give it as `before` for the next page; null: the last page")


class SignupResult(BaseModel):
    contact_id: int
    state: Literal["pending", "granted", "already"] = Field(
        description="pending: a confirmation email went out; already: signed up before (200)"
    )


class AudienceCount(BaseModel):
    count: int = Field(description="contacts matching the rules")
    sendable: int = Field(description="of those: active, consenting, not suppressed")
