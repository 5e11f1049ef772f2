"""What people read: results per campaign and arm with formula-safe CSV exports (`results`), per-arm
rollout reports (`arm_report`), engagement over time (`engagement`), the send calendar
(`calendar`) and what a dangerous rollout action will do (`impact`).

Read-only over `models` and the aggregates of `campaigns.events`; never writes.
"""
