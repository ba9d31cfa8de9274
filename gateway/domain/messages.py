"""What people read: a `Notification` rendered as a short chat text or a full mail.

Templates live in `gateway/templates/messages/` (`chat.j2`, `mail_subject.j2`, `mail.j2`, shared
macros in `_parts.j2`). They never see the raw incident summary: `_view()` first turns it into a
complete, cleaned view (every documented key present, strings single-line, control and bidi
characters removed, lengths bounded), so a VM called "x\\nSubject: spoof" or a 10 KB name cannot
break a mail header or a table, and templates can use StrictUndefined to catch our own typos.
Chat and the mail's text are plain text (no autoescape; chat goes out as Markdown, values
without `<`/`>`); a mail also has an HTML part (`mail.html.j2`, autoescaped), which apprise
sends as multipart/alternative with a text/plain part it writes from the HTML.

Language (`Receiver.language`): one Jinja environment per language, with that language's
catalog installed (`i18n.py`, `_("...")` in the templates); titles, next steps and notices are
phrased from the summary's data (`phrases.localized`), the recorded English text when there is
none (a notification queued before they existed still renders, in every language).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from . import i18n
from .notifications import Notification
from .phrases import localized, state_label
from .text import DEFAULT_LIMIT, clean_text, text_table
from .timefmt import duration, utc

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "messages"

KINDS = ("mail", "chat")

# apprise NotifyType values: the receiving service may colour or badge by them.
NOTIFY_TYPES = {
    "firing": "failure", "repeat": "failure", "escalated": "failure",
    "remediation_failed": "failure", "needs_human": "failure", "approval_requested": "warning",
    "progress": "info",
    "resolved": "success", "test": "info",
}

# How many list entries a mail shows before "… and N more" (a host may carry hundreds of VMs).
MAIL_AFFECTED_SHOWN = 25
MAIL_PLAN_SHOWN = 25
MAIL_IMPACT_SHOWN = 25
MAIL_TIMELINE_SHOWN = 10
MAIL_DETAILS_SHOWN = 30  # lines of a finding's explanation (recovery steps)
CHAT_AFFECTED_NAMES = 3
CHAT_NOTICES_SHOWN = 4  # the latest; with the other lines a chat message stays within ~10
# Messages whose mail tells the timeline: those that come after something happened.
STORY_TRANSITIONS = ("resolved", "repeat", "escalated", "needs_human", "remediation_failed")
FIELD_WIDTH = 12  # "Incident:   " — a mail's field names and values line up

_LIMITS = {"title": 200, "text": 600, "next_step": 500, "reason": 200, "name": 80,
           "details": 300}
_URL_KEYS = {"approval_url", "console_url"}
# Labels a mail's fields already say (the object, its state and condition): not listed again.
_SHOWN_LABELS = {"resource", "id", "name", "state", "condition"}


@dataclass(frozen=True)
class Message:
    kind: str  # mail | chat
    title: str  # mail subject / chat title line
    body: str  # plain text (chat: Markdown that reads as plain text too)
    notify_type: str  # apprise NotifyType: info | success | warning | failure
    html: str = ""  # mail: the HTML part (apprise writes the text/plain part from it)

    @property
    def body_format(self) -> str:
        """apprise's body format of what is sent: a mail's HTML, a chat's Markdown (Slack,
        Teams and Matrix render its links), plain text otherwise."""
        return "html" if self.html else "markdown" if self.kind == "chat" else "text"

    @property
    def sent_body(self) -> str:
        return self.html or self.body


def render(notification: Notification, kind: str, language: str = i18n.SOURCE) -> Message:
    """The message for one receiver URL of `kind` (mail or chat), in `language`."""
    if kind not in KINDS:
        raise ValueError(f"message kind {kind!r} is not one of {', '.join(KINDS)}")
    env = _env(language)
    view = _view(notification, language, short=kind == "chat")
    html = ""
    if kind == "chat":
        title = view["headline"]
        body = env.get_template("chat.j2").render(view)
    else:
        title = env.get_template("mail_subject.j2").render(view)
        body = env.get_template("mail.j2").render(view)
        html = env.get_template("mail.html.j2").render(view, language=language)
    title = clean_text(title, 250)  # a subject is one line, whatever a template did
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    if not body:  # nothing known beyond the title: say which incident, never send an empty body
        body = i18n.t(language, "Incident %(id)s.", id=view["i"]["id"])
    body += "\n"
    return Message(kind=kind, title=title, body=body,
                   notify_type=NOTIFY_TYPES[notification.transition], html=html)


# --- cleaning -------------------------------------------------------------------------------

def _clean(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {clean_text(k, 60): _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, key) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return value
    if key in _URL_KEYS:
        return clean_text(value, 2000).replace(" ", "%20")
    return clean_text(value, _LIMITS.get(key, DEFAULT_LIMIT))


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _view(n: Notification, lang: str, short: bool = False) -> dict[str, Any]:
    """`short`: for chat — sentences without oneha's internal ids, and no `<`/`>` in a value
    (chat is sent as Markdown, where they could make a link or a tag)."""
    inc = _clean(n.incident)
    if short:
        inc = _markdown_safe(inc)
    obj = inc.get("object") if isinstance(inc.get("object"), dict) else {}
    obj = {k: obj.get(k) for k in ("resource", "id", "name", "state_label", "cluster", "host")}
    if isinstance(obj["state_label"], str):
        obj["state_label"] = state_label(lang, obj["state_label"])
    if obj["resource"] == "ALERT":
        # An alert is named by its alertname; its fingerprint (the id) and its condition
        # (ALERT/<alertname>) only repeat that name in oneha's own terms.
        obj.update(id=None, state_label="")
    affected = [{k: a.get(k) for k in ("resource", "id", "name", "state_label", "host")}
                for a in _dicts(inc.get("affected"))]
    count = inc.get("affected_count")
    count = max(count if isinstance(count, int) and not isinstance(count, bool) else 0,
                len(affected))
    plan = [{k: p.get(k) for k in ("vm_id", "vm_name", "action", "reason")}
            for p in _dicts(inc.get("plan"))]
    impact = [{**{k: p.get(k) for k in ("vm_id", "vm_name", "action", "downtime_s",
                                        "memory_lost", "connections_dropped")},
               "data_loss_risk": _said(lang, p, "data_loss_risk", "data_loss", DEFAULT_LIMIT)}
              for p in _dicts(inc.get("impact"))]
    timeline = [{"t": e.get("t"), "text": e.get("text")} for e in _dicts(inc.get("timeline"))]
    notices = [{"kind": e.get("kind") or "", "text": _said(lang, e, "text", limit=600,
                                                           short=short)}
               for e in _dicts(inc.get("notices"))]
    details = [line for line in inc.get("details") or [] if isinstance(line, str)][:MAIL_DETAILS_SHOWN]
    labels = {k: v for k, v in (inc.get("labels") or {}).items()
              if k not in _SHOWN_LABELS} if isinstance(inc.get("labels"), dict) else {}
    incident = {
        "id": inc["id"], "title": _said(lang, inc, "title", "headline", 200),
        "status": inc.get("status") or ("resolved" if n.transition == "resolved" else "firing"),
        "severity": inc.get("severity") or "", "started_at": _number(inc.get("started_at")),
        "resolved_at": _number(inc.get("resolved_at")), "object": obj,
        "affected": affected, "affected_count": count, "labels": labels,
        "next_step": _said(lang, inc, "next_step", "next", 500, short),
        "approval_url": inc.get("approval_url") or "",
        "plan": plan, "impact": impact, "timeline": timeline,
        "console_url": inc.get("console_url") or "", "details": details, "notices": notices,
    }
    return {
        "n": n, "transition": n.transition, "receiver": clean_text(n.receiver),
        "i": incident, "headline": _headline(lang, n.transition, incident),
        "created_at": n.created_at,
        "affected_shown": affected[:MAIL_AFFECTED_SHOWN],
        "affected_more": count - min(len(affected), MAIL_AFFECTED_SHOWN),
        "chat_names": [a["name"] or f"#{a['id']}" for a in affected[:CHAT_AFFECTED_NAMES]],
        "chat_notices": notices[-CHAT_NOTICES_SHOWN:],
        "chat_notices_more": max(len(notices) - CHAT_NOTICES_SHOWN, 0),
        "plan_shown": plan[:MAIL_PLAN_SHOWN], "plan_more": max(len(plan) - MAIL_PLAN_SHOWN, 0),
        "impact_headers": _impact_headers(lang, impact),
        "impact_rows": _impact_rows(lang, impact[:MAIL_IMPACT_SHOWN]),
        "impact_more": max(len(impact) - MAIL_IMPACT_SHOWN, 0),
        # The timeline is the story so far: told when there is one to tell (a first alert's
        # would only repeat what the message says).
        "timeline_shown": timeline[-MAIL_TIMELINE_SHOWN:]
        if n.transition in STORY_TRANSITIONS else [],
        "timeline_more": max(len(timeline) - MAIL_TIMELINE_SHOWN, 0)
        if n.transition in STORY_TRANSITIONS else 0,
        "story_transitions": STORY_TRANSITIONS,
    }


def _markdown_safe(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _markdown_safe(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_markdown_safe(v, key) for v in value]
    if isinstance(value, str) and key not in _URL_KEYS:
        return value.replace("<", "‹").replace(">", "›")
    return value


def _said(lang: str, d: dict, text_key: str, phrase_key: str = "", limit: int = 600,
          short: bool = False) -> str:
    """`d[text_key]` (recorded in English) in `lang`: phrased from `d[phrase_key]` — or, for a
    notice, from its `code` and `params` — when that language knows it."""
    recorded = d.get(text_key) or ""
    phrase = d.get(phrase_key) if phrase_key else (
        {**d["params"], "key": d.get("code")} if isinstance(d.get("params"), dict) else None)
    return clean_text(localized(lang, phrase, recorded, short), limit)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


_PREFIX = {
    "firing": "[FIRING]", "repeat": "[STILL FIRING]", "resolved": "[RESOLVED]",
    "escalated": "[ESCALATED]", "approval_requested": "[APPROVAL NEEDED]",
    "remediation_failed": "[NEEDS A HUMAN]", "needs_human": "[NEEDS A HUMAN]",
    "progress": "[PROGRESS]", "test": "[TEST]",
}


def _headline(lang: str, transition: str, incident: dict) -> str:
    return f"{i18n.gettext(lang, _PREFIX[transition])} {incident['title']}"


# --- formatting helpers (also Jinja filters) ------------------------------------------------

def yes_no(value: Any, lang: str = i18n.SOURCE) -> str:
    return i18n.gettext(lang, "yes" if value is True else "no" if value is False else "unknown")


def _impact_headers(lang: str, impact: list[dict]) -> list[str]:
    action = ["Action"] if any(p["action"] for p in impact) else []
    return [i18n.gettext(lang, h) for h in ["VM", *action, "Downtime", "Memory lost",
                                            "Connections dropped", "Data-loss risk"]]


def _impact_rows(lang: str, impact: list[dict]) -> list[list[str]]:
    with_action = any(p["action"] for p in impact)
    return [[f"{p['vm_name'] or '-'} (#{p['vm_id']})" if p["vm_id"] is not None
             else (p["vm_name"] or "-"),
             *([p["action"] or "-"] if with_action else []),
             duration(p["downtime_s"]) if p["downtime_s"] is not None
             else i18n.gettext(lang, "not running yet"),
             yes_no(p["memory_lost"], lang), yes_no(p["connections_dropped"], lang),
             p["data_loss_risk"] or i18n.gettext(lang, "unknown")]
            for p in impact]


def obj_label(o: dict) -> str:
    """`HOST node07 (#7)`, `VM web-01 (#42)`; whatever of it is known."""
    parts = [o.get("resource") or "", o.get("name") or ""]
    if o.get("id") is not None and o.get("id") != "":
        parts.append(f"(#{o['id']})")
    return " ".join(p for p in parts if p) or "-"


def field(label: str) -> str:
    """A mail's field name, padded so the values line up: `Incident:   `."""
    return f"{label}:".ljust(FIELD_WIDTH)


TEMPLATES = ("chat.j2", "mail_subject.j2", "mail.j2", "mail.html.j2")


def compile_templates() -> None:
    """Compile every message template in every language now (a worker does it before its pool
    forks), so a worker's first message does not wait for it."""
    for lang in i18n.LANGUAGES:
        env = _env(lang)
        for name in TEMPLATES:
            env.get_template(name)


@functools.lru_cache(maxsize=len(i18n.LANGUAGES))
def _env(lang: str) -> jinja2.Environment:
    """The templates in `lang`: `_()`/`ngettext()` from its catalog, `tr` for a value's word
    (status, severity)."""
    words = i18n.Translations(lang)  # ValueError for a language oneha does not speak
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        # plain text for mail and chat (values are cleaned in _view instead); the mail's HTML
        # part escapes every value
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(words.gettext, words.ngettext, newstyle=True)
    env.filters.update(utc=utc, duration=duration, obj_label=obj_label, field=field,
                       yes_no=functools.partial(yes_no, lang=lang), tr=words.gettext,
                       link=lambda url: f"<{url}>" if url else "")
    env.globals.update(text_table=text_table)
    return env
