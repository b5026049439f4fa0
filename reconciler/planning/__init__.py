"""The plan: canonical documents, field diffs, the pure three-way plan."""
