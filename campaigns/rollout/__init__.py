"""The staged rollout engine. Modules, pure first (no Flask, no SQLAlchemy):

- `bucketing`: bucket = mmh3_32(f"{salt}:{contact_id}") % 10_000, scalar and vectorized.
- `stages`: stage plans (shadow, dark, internal, beta, percent) and the gates stored on each stage.
- `targeting`: include/exclude/protected segments, attribute rules, allow-list, beta group.
- `assignment`: `RolloutSpec`, `ContactFrame`, `assign` (the documented evaluation order).
- `gates`: gate checks and freeze windows.

Database-facing:

- `service`: `load_spec`, `contact_frame`, `is_killed`, `kill` (what the send path calls).
- `machine`: `transition`, the only way state, stage or the kill switch change (audited).
- `approvals`: four-eyes requests and decisions.
- `changes`: audited settings changes, re-randomizing, blue-green model switch.
- `audit`, `evidence`, `status`, `shadow`: the log, gate observations, the control panel's view,
  the shadow/dark-launch report.
- `openfeature`: an OpenFeature provider giving other services the send path's arms.

This package imports nothing at import time, so `campaigns.rollout.bucketing` stays pure.
"""
