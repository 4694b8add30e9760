"""Bundled law files, one TOML per published law (read with importlib.resources; never edited, only added)."""
