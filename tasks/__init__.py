"""Prefect tasks: thin wrappers over ``stockml`` functions that add retries, caching and logging."""

from prefect.cache_policies import NO_CACHE

# Tasks whose inputs are frames and library objects: no cache key to compute, no result to persist.
PLAIN = {"cache_policy": NO_CACHE, "persist_result": False}
