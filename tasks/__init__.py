"""Prefect tasks: thin wrappers over ``stockml`` functions that add retries, caching and logging."""
