"""Running the service under uvicorn, with one or several worker processes.

uvicorn starts several workers only from an import string, so every worker (one or
many) builds its app with :func:`app_from_environment`, reading the settings that
:func:`run` put in ``BIOTAG_SERVE_SETTINGS``; each worker then loads its own model.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from biotag.serve.settings import ServeSettings

SETTINGS_ENV = "BIOTAG_SERVE_SETTINGS"
FACTORY = "biotag.serve.server:app_from_environment"


def app_from_environment() -> FastAPI:
    from biotag.serve.app import create_app

    raw = os.environ.get(SETTINGS_ENV)
    return create_app(ServeSettings.from_json(raw) if raw else ServeSettings())


def run(settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, log_level: str = "info") -> None:
    """Serve until interrupted. Reads the API keys once here first, so that a bad key
    file is reported before any worker starts."""
    import uvicorn

    settings.resolve_api_keys()
    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level)
