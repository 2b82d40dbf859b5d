"""senflow against bare Temporal: `python -m bench` (see bench/cli.py and docs/performance.md)."""
