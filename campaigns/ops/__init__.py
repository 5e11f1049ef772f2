"""Running the platform: rq queues (`queues`), periodic jobs and their scheduler (`periodic`),
recovery of work a dead process left half done (`recovery`), webhook settings and their deliveries
(`webhooks`, `alerts`), the sign-in links mailed while failed logins hold an account
(`sign_in_links`), Prometheus counters (`signals`, `signals_cluster`) and the Redis durability
check (`durability`).

May import every engine package; only `campaigns.jobs`, `worker.py` and the app import it back.
"""
