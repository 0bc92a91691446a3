"""Pydantic models of the spec: the single source the JSON Schema is generated from."""
