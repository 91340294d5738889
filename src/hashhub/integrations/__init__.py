"""Bridges from other tools to a hub; each lives behind an optional extra (see pyproject.toml)."""
