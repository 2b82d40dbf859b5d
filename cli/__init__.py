"""The command line's parts beside ``starter.py`` (the entry point): output and the operator
commands that run beside the service."""
