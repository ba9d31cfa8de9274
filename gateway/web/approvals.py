"""Approval links: a page with the plan and the live state (approve / deny), and the same as API.

- `GET  /approvals/<token>`      HTML page, open to whoever has the link; sets a CSRF nonce cookie.
- `POST /approvals/<token>`      the page's form: decision, csrf (double-submit cookie, HMAC-bound
                                 to this token) — a forged cross-site form is refused.
- `GET  /v1/approvals/<token>`   JSON: the plan and its status.
- `POST /v1/approvals/<token>`   JSON `{"decision": "approve"|"deny", "approver": "...",
                                 "incident_id": optional}`; only `application/json` bodies.
- `GET  /v1/plans/<plan_id>`, `POST /v1/plans/<plan_id>/decision`: the same by plan id, for API
  clients that were not sent the link (as `oneha approve ID`).
Looking needs the link; deciding needs a login as an approver (or an approver's bearer token on
the API; gateway/web/auth.py), who is recorded with the client address in the audit log. A site
may allow deciding with the link alone (`auth.link_approval`): the name typed is then recorded
as "<name> (unverified)".
"""

from __future__ import annotations

import secrets

from flask import Blueprint, current_app, jsonify, make_response, render_template, request

from gateway.domain import states
from gateway.domain.approvals import ApprovalRefused, check_csrf, csrf_token, verify
from gateway.errors import BadInput, Permanent, Transient
from gateway.web import auth_text
from gateway.web.auth import principal
from gateway.web.bodies import json_object

bp = Blueprint("approvals", __name__)
bp.record_once(lambda state: auth_text.install(state.app))  # _(), ngettext, |moment
COOKIE = "oneha_csrf"
_STATUS = {"malformed": 400, "forged": 403, "csrf": 403, "wrong_incident": 409, "used": 409,
           "expired": 410, "unknown": 404, "bad_decision": 400, "no_approver": 400,
           "not_pending": 409}
_DECISIONS = {"approve": "approved", "approved": "approved", "deny": "denied", "denied": "denied"}


def _remediator():
    rt = current_app.extensions["oneha"]
    celery = current_app.extensions["celery"]  # the queue the decisions are sent to

    def build():
        from gateway.adapters.opennebula import OpenNebula
        from gateway.flows.remediation import build_remediator
        return build_remediator(rt, celery.send_task, OpenNebula.of(rt))
    return rt.cached("remediator_web", build)


def _secret() -> str:
    """The approval links' secret: CSRF tokens of the page are signed with it too."""
    return current_app.extensions["oneha"].settings.secret_key.get_secret_value()


def _who(typed: str | None) -> str:
    """The logged-in user, a token's name (with the name given), or the typed name, unverified."""
    who = principal().actor(typed)
    if not who:
        raise ApprovalRefused("no_approver", "type your name: it is recorded with the decision")
    return who


def _via(kind: str) -> str:
    return f"{kind} from {request.remote_addr or '?'}"


def _live(rem, plan) -> list[dict]:
    """The VMs' state right now, next to what the plan was made for."""
    rows = []
    for step in plan.vm_steps[:100]:
        row = {"vm_id": step.vm_id, "name": step.vm_name, "action": step.action,
               "reason": step.reason, "approval_reason": step.approval_reason,
               "planned": states.vm_state_label((step.expect or {}).get("state"),
                                                ((step.expect or {}).get("lcm_states") or [None])[0])}
        try:
            vm = rem.one.vm(step.vm_id)
            row.update(now=vm.state_label, host=vm.host_name or "")
        except (Permanent, Transient) as exc:
            row.update(now="unreadable", host="", error=str(exc)[:200])
        rows.append(row)
    return rows


def _page(template: str, http_status: int = 200, **ctx):
    # The HTTP code is named apart from every template variable: a plan's `status` passed as
    # context once became the response's status line (gunicorn: "Invalid status", a 500).
    resp = make_response(render_template(f"approvals/{template}", **ctx), http_status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"  # the link is a credential
    return resp


@bp.get("/approvals/<token>")
def page(token: str):
    rem = _remediator()
    try:
        claims, plan = rem.check_token(token)
    except ApprovalRefused as exc:
        return _page("refused.html", _STATUS.get(exc.code, 400), error=exc)
    nonce = request.cookies.get(COOKIE) or secrets.token_urlsafe(16)
    state = rem.store.plan_state(plan.plan_id)
    resp = _page("page.html", plan=plan, state=state, live=_live(rem, plan), claims=claims,
                 csrf=csrf_token(_secret(), token, nonce), token=token, who=principal(),
                 link_approval=current_app.extensions["oneha"].settings.auth.link_approval,
                 paused=rem.store.paused())
    resp.set_cookie(COOKIE, nonce, httponly=True, samesite="Strict",
                    secure=request.scheme == "https", path="/approvals/")
    return resp


@bp.post("/approvals/<token>")
def decide_form(token: str):
    rem = _remediator()
    decision = _DECISIONS.get(request.form.get("decision", ""))
    try:
        check_csrf(_secret(), token, request.form.get("csrf"), request.cookies.get(COOKIE))
        if decision is None:
            raise ApprovalRefused("bad_decision", "choose approve or deny")
        who = _who(request.form.get("approver"))
        claims = verify(_secret(), token, rem.ctx.clock())
        status = rem.decide_by_token(token, decision, who, via=_via("web"))
    except ApprovalRefused as exc:
        return _page("refused.html", _STATUS.get(exc.code, 400), error=exc)
    return _page("done.html", decision=decision, who=who, plan_status=status,
                 incident_id=claims.incident_id)


@bp.get("/v1/approvals/<token>")
def api_get(token: str):
    rem = _remediator()
    try:
        claims, plan = rem.check_token(token, request.args.get("incident_id"))
    except ApprovalRefused as exc:
        raise BadInput(exc.code, exc.message, _STATUS.get(exc.code, 400)) from None
    return jsonify(plan=plan.to_dict(), status=rem.store.plan_state(plan.plan_id),
                   expires_at=claims.expires_at)


@bp.post("/v1/approvals/<token>")
def api_decide(token: str):
    rem = _remediator()
    body = json_object(like='{"decision": "approve", "approver": "alice"}')
    decision = _DECISIONS.get(str(body.get("decision", "")))
    try:
        if decision is None:
            raise ApprovalRefused("bad_decision", 'decision must be "approve" or "deny"')
        incident_id = body.get("incident_id")
        if incident_id is not None and not isinstance(incident_id, str):
            raise ApprovalRefused("malformed", "incident_id must be a string")
        status = rem.decide_by_token(token, decision, _who(str(body.get("approver") or "")),
                                     via=_via("api"), incident_id=incident_id)
    except ApprovalRefused as exc:
        raise BadInput(exc.code, exc.message, _STATUS.get(exc.code, 400)) from None
    return jsonify(decision=decision, status=status)


@bp.get("/v1/plans/<plan_id>")
def plan_get(plan_id: str):
    rem = _remediator()
    plan = rem.store.plan(plan_id)
    if plan is None:
        raise BadInput("not_found", f"no plan {plan_id}", 404)
    return jsonify(plan=plan.to_dict(), status=rem.store.plan_state(plan_id))


@bp.post("/v1/plans/<plan_id>/decision")
def plan_decide(plan_id: str):
    """As `oneha approve|deny ID`: an approver may also approve a plan a guard blocked."""
    rem = _remediator()
    body = json_object(like='{"decision": "approve"}')
    decision = _DECISIONS.get(str(body.get("decision", "")))
    try:
        if decision is None:
            raise ApprovalRefused("bad_decision", 'decision must be "approve" or "deny"')
        status = rem.decide_plan(plan_id, decision, _who(str(body.get("approver") or "")),
                                 via=_via("api"))
    except ApprovalRefused as exc:
        raise BadInput(exc.code, exc.message, _STATUS.get(exc.code, 400)) from None
    return jsonify(decision=decision, status=status)
