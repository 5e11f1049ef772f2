"""What a message says: template records (`templates`), their sandboxed compilation and rendering
(`render`) and the bounds on what one render may cost (`render_limits`).

May import `models`, the runtime and the recommender's read side; never the sending path.
"""
