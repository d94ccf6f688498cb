"""Stage 6, registry: the MLflow adapter (``tracking``), the model bundle, the promotion gate and the
train -> register -> gate -> refit lifecycle. ``tracking`` is the only module that talks to MLflow."""
