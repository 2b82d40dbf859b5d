"""The HTTP process's composition root: the API and the web pages, two adapters over one
application layer, served together (`senflow api`, and so `make run`). Neither adapter
imports the other; this module puts them side by side."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from api.app import create_app as create_api
from settings import Settings
from web.app import install


def create_app(
    settings: Settings,
    client: Client | None = None,
    factory: sessionmaker[Session] | None = None,
) -> FastAPI:
    app = create_api(settings, client, factory, docs_assets="/static/build/swagger-ui")
    install(app, app.state.services)
    return app
