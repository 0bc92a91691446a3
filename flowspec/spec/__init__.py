"""The spec language: models, loader, schema, graph checks and compilation."""
