"""SQLAlchemy 2.0 typed tables, one module per aggregate. Imports nothing from app/ or campaigns/."""

from models.base import Base, utcnow
from models.campaigns import Campaign, CampaignLink, Wave
from models.catalog import Interaction, Item
from models.contacts import Contact, ImportRun, Suppression
from models.events import ArmMetric, Event
from models.recommender import ModelVersion, Recommendation
from models.rollouts import Approval, Decision, Rollout, RolloutAudit, ShadowRender
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
    "Base",
    "Blob",
    "BlobChunk",
    "Campaign",
    "CampaignLink",
    "Contact",
    "Decision",
    "Event",
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
    "Suppression",
    "Template",
    "User",
    "Wave",
    "Webhook",
    "WebhookDelivery",
    "utcnow",
]
