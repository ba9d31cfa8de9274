"""One JSON error shape for the HTTP API: `{"error": "<reason code>", "detail": "<what to do>"}`.

Every 4xx/5xx under `/v1/` answers this way — our own `BadInput`/`Transient` and werkzeug's
HTTPExceptions alike (404, 405, 413, ...). Pages outside `/v1/` (the web console) keep HTML.

Redis away (a Redis error, a `Transient`, a broker error) is a 503 on every path, with
`Retry-After`; the console shows a plain page saying Redis is unreachable. Each Redis command
waits at most `runtime.REDIS_TIMEOUT` twice, so the answer comes within the hook sender's 3 s.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from kombu.exceptions import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from ..adapters.store import UNAVAILABLE, redis_cause, unreachable
from ..errors import BadInput, Transient

log = logging.getLogger(__name__)
API_PREFIX = "/v1/"


def error_response(status: int, error: str, detail: str = "") -> Response:
    response = jsonify(error=error, detail=detail)
    response.status_code = status
    return response


def _route() -> str:
    """What a log line says of the request: its route (`/approvals/<token>`), never the path
    itself — an approval link's path is a credential, and logs travel further than pages."""
    rule = request.url_rule
    return rule.rule if rule is not None else "(no route)"


def _wants_json() -> bool:
    return request.path.startswith(API_PREFIX)


def install(app: Flask) -> None:
    """Register the handlers on `app` (called by `create_app`)."""

    @app.errorhandler(BadInput)
    def _bad_input(exc: BadInput):
        if _wants_json():
            return error_response(exc.status, exc.error, exc.detail)
        # A page (a console form refused by the login gate, say): a page that says why.
        return Response(render_template("auth/error.html", status=exc.status, error=exc.error,
                                        detail=exc.detail), exc.status)

    def _unavailable(exc: Exception):
        log.warning("request_unavailable", extra={"route": _route(), "reason": str(exc)})
        cause = redis_cause(exc)
        if isinstance(exc, Transient) or cause is None:
            detail = str(exc)  # a Transient says what it could not do, and why
        else:
            detail = unreachable(current_app.extensions["oneha"].settings.redis_url, cause)
        if _wants_json():
            response = error_response(503, "unavailable", f"{detail}; try again later")
        else:
            response = Response(render_template("console/unavailable.html", detail=detail,
                                                redis=cause is not None), 503)
        response.headers["Retry-After"] = "5"
        return response

    for kind in (Transient, OperationalError, *UNAVAILABLE):
        app.register_error_handler(kind, _unavailable)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if not _wants_json():
            return exc
        code = exc.code or 500
        error = (exc.name or "error").lower().replace(" ", "_")
        response = error_response(code, error, exc.description or "")
        for name, value in exc.get_headers():  # keeps e.g. Allow on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Flask gives HTTPExceptions to the handler above; this is a bug of ours: log it in full.
        log.exception("request_failed", extra={"route": _route(), "method": request.method})
        if not _wants_json():
            return InternalServerError()
        return error_response(500, "internal_error", f"{type(exc).__name__}; see the gateway log")
