"""The API blueprint's frame: who is asking (a bearer token or the session), problem+json
answers, and the JSON body checked against its schema (web.api.spec) before any view reads it.

A bearer token acts with exactly its owner's rights and needs no CSRF token (a browser never
sends it by itself); a session cookie still works, and its writes need the X-CSRFToken header.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask_login import current_user
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from engine import tokens
from web.api.spec import PROBLEM_TYPE, schema_of
from web.extensions import csrf, db, limiter
from web.logs import request_id
from web.users import User, write_after_response

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)  # checked in `authenticate`, for session cookies only

#: requests per minute per token (or per address without one); DESKFLOW_API_RATE_LIMIT overrides
RATE_LIMIT = "600/minute"
#: JSON bodies deeper than this are refused before anything walks them
MAX_DEPTH = 32
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: pages anyone may read: the description of the API and its docs
PUBLIC = frozenset({"api.openapi_json", "api.docs", "api.docs_asset", "api.docs_openapi"})
NEEDS_AUTH = "Send 'Authorization: Bearer <token>' (a personal API token) or sign in."
BAD_TOKEN = "The token is not valid: unknown, revoked, or its owner is no longer active."
BAD_HEADER = "The Authorization header must be 'Bearer <token>'."


def problem(status: int, detail: str, errors: dict[str, list[str]] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """An RFC 9457 problem details response."""
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase,
                            "status": status, "detail": detail}
    if rid := request_id():
        body["request_id"] = rid  # the X-Request-ID header too; quote it when reporting a problem
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_TYPE
    response.headers.update(headers or {})
    if status == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = 'Bearer realm="deskflow"'
    return response


class ApiProblem(Exception):
    """Answer the current API call with a problem (raised from helpers, turned into a response)."""

    def __init__(self, status: int, detail: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors


@bp.errorhandler(ApiProblem)
def _api_problem(exc: ApiProblem) -> Response:
    return problem(exc.status, exc.detail, exc.errors)


def _bearer() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.strip().partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _rate_key() -> str:
    secret = _bearer()
    return f"token:{tokens.digest(secret)}" if secret else f"addr:{request.remote_addr}"


def _rate_limit() -> str:
    return str(current_app.config.get("DESKFLOW_API_RATE_LIMIT") or RATE_LIMIT)


limiter.limit(_rate_limit, key_func=_rate_key)(bp)


@bp.before_request
def authenticate() -> Response | None:
    """Sign the caller in from their bearer token, or check the session's CSRF token on writes."""
    if request.endpoint in PUBLIC:
        return None
    secret = _bearer()
    if secret is not None:
        if not secret:
            return problem(401, BAD_HEADER,
                           headers={"WWW-Authenticate": 'Bearer realm="deskflow", error="invalid_request"'})
        session = db.session()
        found = tokens.token_and_owner(session, secret)
        if found is None:
            return problem(401, BAD_TOKEN,
                           headers={"WWW-Authenticate": 'Bearer realm="deskflow", error="invalid_token"'})
        row, person = found
        # Flask-Login's current user for this request only: nothing goes into the session cookie
        g._login_user = User(person, "")
        g.api_token = row.id
        now = datetime.now(UTC)
        if tokens.needs_use_mark(row, now):
            write_after_response(tokens.mark_used(row.id, now))
        return None
    # A browser's session cookie rides along by itself: its writes need the CSRF token, checked
    # first as on every page; a client that sends no cookie at all is simply not signed in.
    writes = request.method not in SAFE_METHODS
    checked_first = writes and current_app.config["SESSION_COOKIE_NAME"] in request.cookies
    if checked_first:
        csrf.protect()  # a CSRFError: 400 (web.errors)
    if not current_user.is_authenticated:
        return problem(401, NEEDS_AUTH)
    if writes and not checked_first:
        csrf.protect()
    return None


# ---------------------------------------------------------------- bodies


def _walk(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ApiProblem(400, f"The JSON body is nested more than {MAX_DEPTH} levels deep.")
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiProblem(400, "The request contains a NUL character.")
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk(k, depth + 1)
            _walk(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _walk(v, depth + 1)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_body(optional: bool = False) -> Any:
    """The parsed JSON body: 415 when it is not JSON, 400 when it does not parse.

    An `optional` body may be left out entirely (no Content-Type needed); it reads as {}.
    """
    data = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413
    # (a form body was read already, by web.security: its data is gone, its type is not)
    if optional and not data and (request.is_json or not request.mimetype):
        return {}
    if not request.is_json:
        raise ApiProblem(415, "Send the body as JSON, with 'Content-Type: application/json'.")
    try:
        text = data.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ApiProblem(400, "The body is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ApiProblem(400, f"The body is not valid JSON ({where}).") from None
    except (ValueError, RecursionError):
        raise ApiProblem(400, "The body is not valid JSON.") from None
    _walk(value)
    return value


_validators: dict[str, Draft202012Validator] = {}


def _validator(name: str) -> Draft202012Validator:
    if name not in _validators:
        _validators[name] = Draft202012Validator(schema_of(name), format_checker=FormatChecker())
    return _validators[name]


def _message(e: ValidationError) -> str:
    """Our words for what the schema refused (never the library's)."""
    s = e.schema if isinstance(e.schema, dict) else {}
    words = {
        "required": "This field is required.",
        "additionalProperties": "Unknown field.",
        "type": f"Must be {_kind(s.get('type'))}.",
        "maxLength": f"At most {s.get('maxLength')} characters.",
        "minLength": "Must not be empty.",
        "minimum": f"At least {s.get('minimum')}.",
        "maximum": f"At most {s.get('maximum')}.",
        "enum": "Must be one of: " + ", ".join(map(str, s.get("enum") or [])) + ".",
        "const": f"Must be {s.get('const')!r}.",
        "maxItems": f"At most {s.get('maxItems')} items.",
        "minItems": f"At least {s.get('minItems')} items.",
        "format": f"Must be a valid {s.get('format')}.",
    }
    return words.get(str(e.validator), "This value is not allowed here.")


def _kind(t: Any) -> str:
    names = {"object": "an object", "string": "a string", "integer": "a whole number",
             "array": "a list", "boolean": "true or false", "null": "null", "number": "a number"}
    kinds = t if isinstance(t, list) else [t]
    return " or ".join(names.get(str(k), str(k)) for k in kinds)


def checked(name: str, value: Any) -> dict[str, Any]:
    """`value` if it matches the body schema `name`; else 422 with the errors by field path."""
    errors: dict[str, list[str]] = {}
    for e in sorted(_validator(name).iter_errors(value), key=lambda e: list(e.path)):
        path = ".".join(str(p) for p in e.path)
        if e.validator == "required":
            for missing in _missing(e):
                said = errors.setdefault(".".join(filter(None, [path, missing])), [])
                if _message(e) not in said:
                    said.append(_message(e))
            continue
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            known = e.schema.get("properties", {}) if isinstance(e.schema, dict) else {}
            for extra in e.instance:
                if extra not in known:
                    errors.setdefault(".".join(filter(None, [path, str(extra)])), []).append(_message(e))
            continue
        errors.setdefault(path or "_body", []).append(_message(e))
    if errors:
        raise ApiProblem(422, "The body does not match the schema.", errors)
    return value  # type: ignore[no-any-return]


def _missing(e: ValidationError) -> list[str]:
    have = e.instance if isinstance(e.instance, dict) else {}
    wanted = e.validator_value if isinstance(e.validator_value, list) else []
    return [str(k) for k in wanted if k not in have]
