"""senflow over HTTP: FastAPI on the same application functions as the CLI."""
