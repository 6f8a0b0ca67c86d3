"""The JSON API v1 (docs/api.md): `bp` carries /api/v1 and /api/docs."""

from __future__ import annotations

from web.api import attachments, views
from web.api.base import bp

__all__ = ["attachments", "bp", "views"]
