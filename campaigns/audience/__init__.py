"""Audiences: segment rules as a JSON tree turned into SQL (`rules`), their behaviour rules over the
purchase history (`behaviour`), the portable JSON operations they need (`json_ops`), and segment
sizes counted once and cached (`sizes`).

May import `models` and `campaigns.errors`; the rules never import the sending path or the app.
"""
