"""What a recommendation can show and why: the items of the catalog with their CSV import (`items`)
and contacts' purchase history, the recommender's training data (`interactions`).

May import `models`, `campaigns.contacts` and `campaigns.imports`.
"""
