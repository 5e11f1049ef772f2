"""The recommender: scikit-learn style estimators (pure), offline evaluation, a versioned registry,
training, batch scoring and the lookup the send path uses (`service`)."""
