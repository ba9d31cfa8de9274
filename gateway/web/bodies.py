"""The one way a view reads a JSON body: `application/json` only (a cross-site form cannot send
one), within the size limit (the app's MAX_CONTENT_LENGTH: werkzeug answers 413 past it), and
then `parse_json_object` (nesting depth, UTF-8, an object) — a 4xx with the JSON error shape for
anything else."""

from __future__ import annotations

from typing import Any

from flask import request

from ..domain.json_bodies import parse_json_object
from ..errors import BadInput


def json_object(like: str = "") -> dict[str, Any]:
    if not request.is_json:
        raise BadInput("unsupported_media_type", "send a JSON body (Content-Type: application/json)",
                       415)
    return parse_json_object(request.get_data(cache=False), like)
