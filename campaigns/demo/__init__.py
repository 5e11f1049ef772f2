"""The demo workspace and everything simulated: the workspace from the Online Retail file
(`workspace`) or its seeded stand-in (`synthetic`), the replayed story (`story`) and simulated
recipients (`simulate`).

Orchestrates the engine like a user would (campaigns, sending, events, decisions); nothing else
imports it but the jobs and the app.
"""
