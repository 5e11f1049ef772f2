"""The engine: audience, rollout, statistics, recommender, rendering, delivery, tracking, reports, jobs."""
