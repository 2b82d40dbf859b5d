"""The application layer: every use case (start, act, reply, read, list, report, export) once.

The CLI, the HTTP API and the web pages parse input, call a function here with a
``Principal`` and plain values, and present the answer. Nothing here parses a command line or
an HTTP request; nothing in the adapters decides a rule.
"""
