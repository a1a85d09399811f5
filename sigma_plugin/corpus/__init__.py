"""Builders for the demo's small real corpora (gettext parallel text, synthetic speech)."""
