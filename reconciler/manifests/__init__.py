"""Manifests: discovery, YAML with line numbers, JSON-Schema validation, schema export."""
