"""Secrets at rest: payload encryption (Temporal codec) and hashed API tokens."""
