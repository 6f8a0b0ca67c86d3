"""Signed, single-use, expiring links sent by email: what surveys and email actions share.

A link's token is signed with itsdangerous (the app's secret key and a salt of its own kind,
so a token of one kind is never valid as another) and names a row and that row's random
nonce. The row keeps the nonce and when the link expires; using the link spends the nonce.
The caller's unit of work decides the time, so an injected clock tests expiry. This module
knows no row type: `engine.satisfaction` and `engine.email_links` each check their own.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from engine.errors import EngineError

#: the nonce of a spent link: no token matches it
USED = ""
#: longer tokens are refused before their signature is checked
MAX_TOKEN = 500


class LinkRefused(EngineError):
    """A link that is forged, tampered with or names another row (400)."""

    status = 400


class LinkGone(EngineError):
    """A link that has expired or was already used (410)."""

    status = 410


def new_nonce() -> str:
    """A fresh nonce for a row a link names (32 hex characters)."""
    return secrets.token_hex(16)


def sign(secret_key: str, salt: str, data: Mapping[str, Any]) -> str:
    """The token of a link: `data` signed with the secret key and the salt of its kind."""
    return str(URLSafeSerializer(secret_key, salt=salt).dumps(dict(data)))


def unsign(secret_key: str, salt: str, token: object, forged: LinkRefused,
           fields: Mapping[str, type]) -> dict[str, Any]:
    """The data a token carries, each of `fields` of its type (bool is no int), or `forged`."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise forged
    try:
        data = URLSafeSerializer(secret_key, salt=salt).loads(token)
    except BadSignature:
        raise forged from None
    if not isinstance(data, dict):
        raise forged
    for name, kind in fields.items():
        value = data.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise forged
    return data


def same_nonce(stored: str, given: str) -> bool:
    """Whether the token's nonce is the row's (in constant time; a spent row matches none)."""
    return bool(stored) and secrets.compare_digest(stored, given)
