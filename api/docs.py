"""The offline API explorer: flask-smorest's Swagger UI page at /docs, with its
assets served from the swagger-ui-bundle package instead of a CDN."""

from __future__ import annotations

from flask import Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path


def init_app(app: Flask) -> None:
    @app.get("/docs-assets/<path:filename>")
    def docs_assets(filename):
        return send_from_directory(swagger_ui_path, filename, max_age=86400)
