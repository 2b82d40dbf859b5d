"""Side effects only, each idempotent (keyed on workflow id + step)."""
