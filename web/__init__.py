"""The web pages for each role, over the application layer (see web/app.py)."""
