"""The run: lock, plan, apply, saved plans, adoption."""
