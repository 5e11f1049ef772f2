"""The bodies of the flows API's answers (app.api.flows)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FlowOut(BaseModel):
    id: int
    name: str
    state: str = Field(description="draft | active | paused | archived")
    version: int = Field(description="bumped by every change of the definition; entries keep theirs")
    definition: dict[str, Any] = Field(description="the FlowDefinition as stored")
    created_by: str
    created_at: str
    updated_at: str
    activated_at: str | None
    entries: dict[str, int] = Field(description="journeys by state: active, completed, exited")


class FlowList(BaseModel):
    flows: list[FlowOut]


class FlowTemplateOut(BaseModel):
    key: str = Field(description="what `POST /flows` takes as `from_template`")
    name: str
    summary: str
    templates: list[str] = Field(description="the email templates it uses, made if the workspace lacks them")
    definition: dict[str, Any] = Field(description="send steps name a library template by key")


class FlowTemplateList(BaseModel):
    flow_templates: list[FlowTemplateOut]


class FlowEntryOut(BaseModel):
    id: int
    contact_id: int
    version: int
    generation: int = Field(description="the contact's n-th entry into this flow")
    state: str = Field(description="active | completed | exited")
    step_id: str | None = Field(description="the step run when next due; null once past the last")
    entered_at: str
    next_due_at: str | None
    finished_at: str | None
    exit_reason: str
    attempts: int
    last_error: str


class FlowEntryList(BaseModel):
    entries: list[FlowEntryOut]


class ContactEventAccepted(BaseModel):
    recorded: bool = Field(description="false: an event with this key was recorded before (nothing done)")
    contact_id: int
