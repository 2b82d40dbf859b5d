"""senflow's domain: the SEN Code of Practice rules, pure (stdlib and transitions only)."""
