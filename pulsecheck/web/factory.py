"""The app of one uvicorn worker when `serve --workers N` starts several: settings from the environment."""

from __future__ import annotations

from fastapi import FastAPI


def app_from_environment() -> FastAPI:
    """Load the settings as the CLI does (files and PULSECHECK_* variables) and build the app."""
    from pulsecheck.config import load_settings
    from pulsecheck.web.app import create_app

    return create_app(load_settings())
