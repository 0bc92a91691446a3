"""Deterministic, offline handlers used by the example specs."""
