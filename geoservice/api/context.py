"""What a request handler reaches for: the app's services and settings (set once by ``create_app``)."""
from __future__ import annotations

from flask import current_app

from geoservice.services import Services
from geoservice.settings import Settings


def services() -> Services:
    """The app's services (storage, workflows, repositories)."""
    found: Services = current_app.extensions["geoservice.services"]
    return found


def settings() -> Settings:
    """The app's settings."""
    found: Settings = current_app.extensions["geoservice.settings"]
    return found
