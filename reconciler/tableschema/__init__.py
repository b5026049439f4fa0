"""The tables behind the sources: introspection, classification, check, report."""
