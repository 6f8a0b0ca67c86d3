"""Response headers every page carries."""

from __future__ import annotations

from flask import Flask, Response, abort, request

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; object-src 'none'")


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_nul() -> None:
        """NUL never belongs in a form or a URL (and PostgreSQL refuses it in text); a form
        part always has a name (werkzeug gives None for one whose Content-Disposition has none)."""
        for source in (request.args, request.form):
            for key, value in source.items(multi=True):
                if key is None:
                    abort(400, description="A part of the form has no name.")
                if "\x00" in key or "\x00" in value:
                    abort(400, description="The request contains a NUL character.")
        if "\x00" in request.path:
            abort(400, description="The request contains a NUL character.")

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response
