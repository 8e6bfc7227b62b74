"""HTTP API (OpenAPI) and its authentication: handlers validate and delegate only."""

from diemcau.api.app import create_app

__all__ = ["create_app"]
