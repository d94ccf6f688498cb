"""Prefect flows: recipes that compose ``tasks``."""
