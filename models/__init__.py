"""SQLAlchemy 2.0 typed tables, one module per aggregate. Imports nothing from app/ or campaigns/."""

from models.audit import AuditEntry
from models.base import Base, simulated_now, utcnow
from models.campaigns import Campaign, CampaignLink, Wave
from models.catalog import Interaction, Item
from models.consent import ConsentRecord, SignupForm
from models.contacts import Contact, ImportRun, Suppression
from models.deliverability import Bounce, DkimKey
from models.events import ArmMetric, Event
from models.flows import ContactEvent, Flow, FlowEntry, FlowSegmentMember, FlowStepCampaign, FlowVersion
from models.recommender import ModelVersion, Recommendation
from models.retention import FoldedResult
from models.rollouts import Approval, Decision, Rollout, RolloutAudit, ShadowRender, WorkspaceSetting
from models.segments import Segment
from models.sends import Send
from models.storage import Blob, BlobChunk, InstanceSecret
from models.templates import Template
from models.users import ApiToken, Role, User
from models.webhooks import Webhook, WebhookDelivery

__all__ = [
    "ApiToken",
    "Approval",
    "ArmMetric",
    "AuditEntry",
    "Base",
    "Blob",
    "BlobChunk",
    "Bounce",
    "Campaign",
    "CampaignLink",
    "ConsentRecord",
    "Contact",
    "ContactEvent",
    "Decision",
    "DkimKey",
    "Event",
    "Flow",
    "FlowEntry",
    "FlowSegmentMember",
    "FlowStepCampaign",
    "FlowVersion",
    "FoldedResult",
    "ImportRun",
    "InstanceSecret",
    "Interaction",
    "Item",
    "ModelVersion",
    "Recommendation",
    "Role",
    "Rollout",
    "RolloutAudit",
    "Segment",
    "Send",
    "ShadowRender",
    "SignupForm",
    "Suppression",
    "Template",
    "User",
    "Wave",
    "Webhook",
    "WebhookDelivery",
    "WorkspaceSetting",
    "simulated_now",
    "utcnow",
]
