"""`GET /v1/openapi.json`: the HTTP API described as OpenAPI 3.1.

Written here by hand, next to the routes, and kept equal to them by a test
(tests/integration/test_openapi.py: every `/v1` route of the Flask url_map is documented with its
methods, and nothing is documented that does not exist), which also runs schemathesis against it.
A blueprint that adds a `/v1` route adds its operation to `PATHS` below.

Authentication (gateway/web/auth.py): `Authorization: Bearer <token>` (`oneha token add`), or a
logged-in session cookie plus `X-CSRF-Token` on writes. Ingest and the Alertmanager webhook have
their own: an HMAC signature per front-end, and `ingest.alertmanager_token`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    """Each error this operation answers with, in the one error shape; `default` for the rest
    (401/403 from the login gate, 413 too large, 503 while Redis is away)."""
    out = {str(c): {"$ref": "#/components/responses/Error"} for c in codes}
    out["default"] = {"$ref": "#/components/responses/Error"}
    return out


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, "maxLength": 400}}


def _limit() -> dict[str, Any]:
    return {"name": "limit", "in": "query", "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}


def _op(summary: str, ok: str, ok_schema: dict[str, Any], *errors: int, tags: list[str],
        body: dict[str, Any] | None = None, params: list | None = None,
        security: list | None = None, ok_code: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": tags,
                          "responses": {ok_code: _json(ok_schema, ok), **_errors(*errors)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    if params:
        op["parameters"] = params
    if security is not None:
        op["security"] = security
    return op


OBJ = {"type": "object"}
DECISION = {"type": "object", "required": ["decision"], "properties": {
    "decision": {"type": "string", "enum": ["approve", "deny"]},
    "approver": {"type": "string", "maxLength": 120,
                 "description": "recorded next to a token's name; a logged-in user is recorded "
                                "by their own name"}}}
DECIDED = {"type": "object", "required": ["decision", "status"], "properties": {
    "decision": {"type": "string", "enum": ["approved", "denied"]},
    "status": {"type": "string", "description": "the plan's status after the decision"}}}
PLAN_STATUS = {"type": "object", "required": ["plan", "status"],
               "properties": {"plan": OBJ, "status": OBJ}}
TOKEN = _path_param("token", "the signed approval token of the link")

PATHS: dict[str, dict[str, Any]] = {
    "/v1/events": {
        "post": _op("Record a state hook's event (the oneha-hook sender)", "recorded",
                    {"type": "object", "properties": {"event_id": {"type": "string"},
                                                      "duplicate": {"type": "boolean"}}},
                    400, 401, 409, 413, tags=["ingest"], ok_code="202",
                    body=_ref("HookEvent"), security=[{"frontendSignature": []}]),
        "get": _op("The event log, newest first", "events",
                   {"type": "object", "properties": {"events": {"type": "array", "items": OBJ}}},
                   400, tags=["events"], params=[_limit(), {
                       "name": "object", "in": "query", "required": False,
                       "description": "host:7, vm:42, frontend:zone0/1 or alert:<fingerprint>",
                       "schema": {"type": "string"}}]),
    },
    "/v1/alertmanager": {
        "post": _op("Alertmanager's webhook (v4)", "recorded", OBJ, 400, 401, 413,
                    tags=["ingest"], ok_code="202", body=OBJ,
                    security=[{"alertmanagerToken": []}]),
    },
    "/v1/drills": {
        "post": _op("A drill event came back through the front-end's hook path", "reached",
                    {"type": "object", "properties": {"drill_id": {"type": "string"},
                                                      "reached_by": {"type": "string"}}},
                    400, 401, 404, 413, tags=["ingest"], ok_code="202",
                    body={"type": "object", "required": ["drill_id"], "properties": {
                        "drill_id": {"type": "string", "pattern": "^[0-9a-f]{16,32}$"},
                        "frontend": {"type": "string"}, "hook": {"type": "string"}}},
                    security=[{"frontendSignature": []}]),
    },
    "/v1/heartbeats": {
        "post": _op("A front-end's sender is alive (signed at each scheduled flush)", "noted",
                    OBJ, 400, 401, 413, tags=["ingest"], ok_code="202",
                    body={"type": "object", "properties": {
                        "frontend": {"type": "string"}, "sent_at": {"type": "number"},
                        "spooled": {"type": "integer", "minimum": 0}}},
                    security=[{"frontendSignature": []}]),
    },
    "/v1/incidents": {
        "get": _op("Incidents, newest first", "incidents",
                   {"type": "object", "properties": {
                       "incidents": {"type": "array", "items": _ref("Incident")}}},
                   400, tags=["incidents"], params=[_limit(), {
                       "name": "state", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": ["open", "all"],
                                  "default": "open"}}]),
    },
    "/v1/incidents/{incident_id}": {
        "get": _op("An incident with its objects and timeline", "the incident",
                   _ref("Incident"), 404, tags=["incidents"],
                   params=[_path_param("incident_id", "e.g. host-7-1a2b3c4d")]),
    },
    "/v1/incidents/{incident_id}/ack": {
        "post": _op("Acknowledge an incident (approver)", "the incident", _ref("Incident"),
                    400, 404, 409, 415, tags=["incidents"],
                    params=[_path_param("incident_id", "e.g. host-7-1a2b3c4d")],
                    body={"type": "object", "properties": {
                        "by": {"type": "string", "maxLength": 120},
                        "comment": {"type": "string", "maxLength": 2000}}}),
    },
    "/v1/silences": {
        "get": _op("Active and pending silences (all=1: expired ones too)", "silences",
                   {"type": "object", "properties": {
                       "silences": {"type": "array", "items": _ref("Silence")}}},
                   tags=["silences"], params=[{"name": "all", "in": "query", "required": False,
                                               "schema": {"type": "string",
                                                          "enum": ["0", "1"]}}]),
        "post": _op("Create a silence (approver)", "the silence", _ref("Silence"),
                    400, 415, tags=["silences"], ok_code="201", body={
                        "type": "object", "required": ["matchers", "comment"], "properties": {
                            "matchers": {"type": "array", "minItems": 1,
                                         "items": {"type": "string"},
                                         "description": 'e.g. ["host=node07", "name=~web-.*"]'},
                            "comment": {"type": "string", "minLength": 1},
                            "author": {"type": "string"},
                            "duration": {"type": "string", "description": "e.g. 2h"},
                            "ends_at": {"type": "number", "description": "unix seconds"},
                            "starts_at": {"type": "number", "description": "unix seconds"}}}),
    },
    "/v1/silences/{silence_id}": {
        "get": _op("A silence", "the silence", _ref("Silence"), 404, tags=["silences"],
                   params=[_path_param("silence_id", "the silence's id")]),
        "delete": _op("Expire a silence now (approver)", "the silence", _ref("Silence"), 404,
                      tags=["silences"],
                      params=[_path_param("silence_id", "the silence's id"),
                              {"name": "by", "in": "query", "required": False,
                               "schema": {"type": "string"}}]),
    },
    "/v1/approvals/{token}": {
        "get": _op("The plan an approval link is for, and its status", "the plan",
                   {"type": "object", "properties": {"plan": OBJ, "status": OBJ,
                                                     "expires_at": {"type": "number"}}},
                   400, 403, 404, 409, 410, tags=["approvals"],
                   params=[TOKEN, {"name": "incident_id", "in": "query", "required": False,
                                   "schema": {"type": "string"}}]),
        "post": _op("Approve or deny the plan of an approval link (approver)", "decided",
                    DECIDED, 400, 403, 404, 409, 410, 415, tags=["approvals"], params=[TOKEN],
                    body={**DECISION, "properties": {**DECISION["properties"],
                                                     "incident_id": {"type": "string"}}}),
    },
    "/v1/plans/{plan_id}": {
        "get": _op("A remediation plan and its status", "the plan", PLAN_STATUS, 404,
                   tags=["approvals"], params=[_path_param("plan_id", "e.g. host-7-1a2b3c4d.1")]),
    },
    "/v1/plans/{plan_id}/decision": {
        "post": _op("Approve or deny a plan by its id (approver; as `oneha approve`)", "decided",
                    DECIDED, 400, 404, 409, 410, 415, tags=["approvals"],
                    params=[_path_param("plan_id", "e.g. host-7-1a2b3c4d.1")], body=DECISION),
    },
    "/v1/raft": {
        "get": _op("The front-ends' Raft status at the last poll", "the status",
                   {"type": "object", "required": ["polled"], "properties": {
                       "polled": {"type": "boolean"}, "at": {"type": ["number", "null"]},
                       "leader": {"type": ["integer", "null"]},
                       "servers": {"type": "array", "items": OBJ},
                       "findings": {"type": "array", "items": OBJ}}},
                   tags=["frontends"]),
    },
    "/v1/openapi.json": {
        "get": _op("This document", "OpenAPI 3.1", OBJ, tags=["meta"]),
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "oneha", "version": "1",
             "description": "OpenNebula high-availability alerting and remediation gateway. "
                            "Errors are always {\"error\": <code>, \"detail\": <what to do>}."},
    "security": [{"bearer": []}, {"session": [], "csrf": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "a token of auth.tokens (oneha token add) with its role"},
            "session": {"type": "apiKey", "in": "cookie", "name": "oneha_session",
                        "description": "after POST /login"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                     "description": "the session's CSRF token, on writes with a session"},
            "frontendSignature": {"type": "apiKey", "in": "header", "name": "X-OneHA-Signature",
                                  "description": "sha256=HMAC(front-end key, '<X-OneHA-Timestamp>"
                                                 ".<body>'), with X-OneHA-Frontend"},
            "alertmanagerToken": {"type": "http", "scheme": "bearer",
                                  "description": "ingest.alertmanager_token"},
        },
        "responses": {"Error": _json(_ref("Error"), "an error")},
        "schemas": {
            "Error": {"type": "object", "required": ["error", "detail"], "properties": {
                "error": {"type": "string"}, "detail": {"type": "string"}}},
            "Incident": {"type": "object", "required": ["id", "state", "title"], "properties": {
                "id": {"type": "string"}, "state": {"type": "string", "enum": [
                    "firing", "acknowledged", "remediating", "resolved"]},
                "title": {"type": "string"}, "objects": {"type": "array", "items": OBJ},
                "timeline": {"type": "array", "items": OBJ}}},
            "Silence": {"type": "object", "required": ["id", "matchers", "state"], "properties": {
                "id": {"type": "string"}, "matchers": {"type": "array",
                                                       "items": {"type": "string"}},
                "state": {"type": "string", "enum": ["pending", "active", "expired"]}}},
            "HookEvent": {"type": "object", "required": ["resource", "id", "state", "event_id"],
                          "properties": {"resource": {"type": "string", "enum": ["HOST", "VM"]},
                                         "id": {"type": "integer"}, "state": {"type": "integer"},
                                         "xml": {"type": "string"},
                                         "event_id": {"type": "string"}}},
        },
    },
}


@bp.get("/v1/openapi.json")
def document():
    return jsonify(DOCUMENT)
