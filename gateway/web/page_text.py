"""The pages' language and their times: which language a page is in, its words, and `<time>`.

Pages use the project's own catalog mechanism (`gateway/domain/i18n.py`: English is the source
text, another language is a dict from it) rather than Flask-Babel: the messages already work
that way, so one kind of catalog serves both, a test keeps both complete, and there is no .po/.mo
compile step for a wheel or an image to forget. The words of the pages are `PT_BR` below.

The language of a request (`language()`): the switch the reader pressed (cookie `oneha_lang`),
else the logged-in user's configured language (part of the login's `Principal`), else the
browser's Accept-Language, else English.
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import Flask, g, request
from markupsafe import Markup, escape

from gateway.domain import i18n
from gateway.domain.timefmt import utc

COOKIE = "oneha_lang"
LANGUAGES = i18n.LANGUAGES  # ("en", "pt-BR")
NAMES = {"en": "English", "pt-BR": "Português"}

PT_BR: dict[str, str | tuple[str, str]] = {
    # layout
    "Incidents": "Incidentes", "Silences": "Silêncios", "Front-ends": "Front-ends",
    "Readiness": "Prontidão",
    "Events": "Eventos", "Audit": "Auditoria", "Configuration": "Configuração",
    "Language": "Idioma", "Main menu": "Menu principal",
    # times and words
    "just now": "agora mesmo", "%(n)s s ago": "há %(n)s s", "%(n)s min ago": "há %(n)s min",
    "%(n)s h ago": "há %(n)s h", "%(n)s d ago": "há %(n)s d", "in %(n)s s": "em %(n)s s",
    "in %(n)s min": "em %(n)s min", "in %(n)s h": "em %(n)s h", "in %(n)s d": "em %(n)s d",
    "yes": "sim", "no": "não", "none": "nenhum", "nothing yet": "nada ainda",
    "firing": "em alerta", "acknowledged": "reconhecido", "remediating": "em remediação",
    "resolved": "resolvido", "active": "ativo", "pending": "pendente", "expired": "expirado",
    "sent": "enviado", "sending": "enviando", "retrying": "tentando de novo",
    "failed": "falhou", "dead": "desistiu", "new": "novo", "done": "concluído",
    # a plan's status (remediation's words for it)
    "grace": "em carência", "awaiting_approval": "aguardando aprovação",
    "blocked": "bloqueado", "executing": "executando", "verifying": "verificando",
    "denied": "negado", "cancelled": "cancelado", "off": "desligado",
    # incidents.html
    "Automatic remediation is paused by %(by)s: %(reason)s":
        "A remediação automática está pausada por %(by)s: %(reason)s",
    "Open incidents (%(n)s)": "Incidentes abertos (%(n)s)",
    "Incident": "Incidente", "State": "Estado", "Objects": "Objetos", "Since": "Desde",
    "Updated": "Atualizado", "Nothing is failing.": "Nada está falhando.",
    "Recently resolved": "Resolvidos recentemente", "Started": "Início",
    "Resolved": "Resolvido",
    # incident.html
    "since %(at)s": "desde %(at)s", "resolved %(at)s": "resolvido %(at)s",
    "acknowledged by %(who)s": "reconhecido por %(who)s", "merged into": "incorporado a",
    "Object": "Objeto", "Name": "Nome", "Host": "Host", "Status": "Situação",
    "First seen": "Visto primeiro", "Last seen running": "Visto rodando por último",
    "Remediation plan": "Plano de remediação", "Step": "Passo", "VM / host": "VM / host",
    "Why": "Motivo", "Outcome": "Resultado", "not acted on": "sem ação", "host": "host",
    "Impact": "Impacto", "VM": "VM", "Downtime": "Tempo fora do ar",
    "Memory state lost": "Estado da memória perdido",
    "Connections dropped": "Conexões derrubadas", "Data-loss risk": "Risco de perda de dados",
    "Acknowledge": "Reconhecer", "Silence host %(host)s…": "Silenciar o host %(host)s…",
    "Timeline": "Linha do tempo", "When": "Quando", "What": "O quê", "Who": "Quem",
    "Recorded in English.": "Registrado em inglês.",
    "Every recorded entry (%(n)s): events, deliveries, mutes":
        "Todos os registros (%(n)s): eventos, entregas, silenciamentos",
    "Messages sent": "Mensagens enviadas", "Message": "Mensagem", "Receiver": "Destinatário",
    "Delivery": "Entrega", "Attempts": "Tentativas", "Last error": "Último erro",
    "No message was sent for this incident yet (or its records expired).":
        "Nenhuma mensagem foi enviada para este incidente ainda (ou os registros expiraram).",
    # silences.html
    "Matchers": "Critérios", "From": "De", "Until": "Até", "Author": "Autor",
    "Comment": "Comentário", "by %(who)s": "por %(who)s", "Expire now": "Expirar agora",
    "New silence": "Novo silêncio",
    "Messages of incidents whose labels match every matcher are recorded, not sent.":
        "Mensagens de incidentes cujos rótulos atendem a todos os critérios são registradas, "
        "não enviadas.",
    "label=value, one per line or comma-separated (e.g. host=node07)":
        "rótulo=valor, um por linha ou separados por vírgula (ex.: host=node07)",
    "For how long": "Por quanto tempo", "e.g. 2h, 30m, 1d": "ex.: 2h, 30m, 1d",
    "Your name": "Seu nome", "Why (shown to others)": "Motivo (visível para todos)",
    "Create silence": "Criar silêncio",
    "Silence %(id)s created; it ends %(at)s.": "Silêncio %(id)s criado; termina %(at)s.",
    "Silence %(id)s expired.": "Silêncio %(id)s expirado.",
    "The silence was not created: %(why)s": "O silêncio não foi criado: %(why)s",
    # config.html
    "Receivers": "Destinatários", "Kind": "Tipo", "URLs (secrets hidden)":
        "URLs (segredos ocultos)", "Send a test message": "Enviar mensagem de teste",
    "No receiver is configured: add receivers with apprise URLs to the configuration.":
        "Nenhum destinatário configurado: adicione destinatários com URLs do apprise à "
        "configuração.",
    "Test message to %(receiver)s: %(ok)s of %(total)s URL(s) delivered.":
        "Mensagem de teste para %(receiver)s: %(ok)s de %(total)s URL(s) entregues.",
    "Gateway": "Gateway", "Public URL": "URL pública", "Redis": "Redis",
    "OpenNebula endpoints": "Endpoints do OpenNebula", "Routes": "Rotas",
    "Group by": "Agrupar por", "Group wait": "Espera do grupo",
    "Repeat interval": "Intervalo de repetição", "Secrets are never shown on this page.":
        "Segredos nunca são mostrados nesta página.", "Result": "Resultado",
    "Elapsed": "Duração",
    # events.html, audit.html, raft.html
    "The last %(n)s events recorded, newest first: hook events from the front-ends, and what "
    "the reconciler, the Raft monitor and Alertmanager reported.":
        "Os últimos %(n)s eventos registrados, do mais novo ao mais antigo: eventos dos hooks "
        "dos front-ends e o que o reconciliador, o monitor do Raft e o Alertmanager relataram.",
    "Source": "Origem", "Condition": "Condição", "Front-end": "Front-end",
    "Incident now": "Incidente agora", "Event": "Evento", "none open": "nenhum aberto",
    "no events recorded yet": "nenhum evento registrado ainda", "Audit trail": "Trilha de auditoria",
    "Actor": "Ator", "Plan": "Plano", "Detail": "Detalhe",
    "Front-ends (Raft)": "Front-ends (Raft)",
    "The Raft monitor has not polled yet.": "O monitor do Raft ainda não consultou.",
    "Last poll %(at)s; leader: %(leader)s": "Última consulta %(at)s; líder: %(leader)s",
    "Id": "Id", "Endpoint": "Endpoint", "Term": "Termo", "Log index": "Índice do log",
    "Commit": "Commit", "Lag": "Atraso", "Error": "Erro", "Findings": "Achados",
    "Severity": "Severidade", "Summary": "Resumo",
    "none: the cluster is healthy": "nenhum: o cluster está saudável",
    # unavailable.html
    "Redis is unreachable": "O Redis está inacessível",
    "Temporarily unavailable": "Temporariamente indisponível",
    "oneha keeps incidents, silences, plans and approvals in Redis, so this page cannot be "
    "shown now. It works again as soon as Redis answers; hook events sent meanwhile wait in the "
    "senders' spools and arrive then.":
        "O oneha guarda incidentes, silêncios, planos e aprovações no Redis, então esta página "
        "não pode ser mostrada agora. Ela volta a funcionar assim que o Redis responder; os "
        "eventos enviados pelos hooks nesse meio-tempo esperam nos spools e chegam depois.",
}
CATALOGS: dict[str, dict[str, str | tuple[str, str]]] = {"en": {}, "pt-BR": PT_BR}
# Values the pages show as words (`_(state)`): a test keeps each of them in every catalog.
WORDS = ("firing", "acknowledged", "remediating", "resolved", "active", "pending", "expired",
         "sent", "sending", "retrying", "failed", "dead", "new", "done", "grace",
         "awaiting_approval", "blocked", "executing", "verifying", "denied", "cancelled", "off")


def accepted(header: str) -> str | None:
    """The best of our languages in an Accept-Language header (`pt-BR,pt;q=0.9,en;q=0.8`):
    any Portuguese reads pt-BR, any English en; None when it names neither."""
    best: tuple[float, int, str] | None = None
    for n, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        base = tag.strip().lower().split("-")[0]
        lang = {"pt": "pt-BR", "en": "en"}.get(base)
        if lang and q > 0 and (best is None or (q, -n) > (best[0], best[1])):
            best = (q, -n, lang)
    return best[2] if best else None


def language() -> str:
    """This request's page language (cached on `g`)."""
    found = getattr(g, "page_language", None)
    if found:
        return found
    chosen = request.cookies.get(COOKIE)
    if chosen not in LANGUAGES:
        who = getattr(g, "principal", None) or getattr(g, "user", None)
        chosen = getattr(who, "language", None)
    if chosen not in LANGUAGES:
        chosen = accepted(request.headers.get("Accept-Language", "")) or i18n.SOURCE
    g.page_language = chosen
    return chosen


def gettext(message: str, **params: Any) -> str:
    found = CATALOGS[language()].get(message, message)
    text = found[0] if isinstance(found, tuple) else found
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for `n`; Jinja fills the placeholders (`%(num)d` and the rest)."""
    found = CATALOGS[language()].get(singular)
    if isinstance(found, tuple):
        return found[0] if n == 1 else found[1]
    return singular if n == 1 else plural


def ago(ts: float, now: float) -> str:
    """`12 min ago` / `há 12 min`, `in 59 min` / `em 59 min` (the server's words; the page's
    script says the same in the reader's own locale)."""
    delta = now - ts
    future = delta < 0
    seconds = abs(delta)
    if seconds < 10:
        return gettext("just now")
    for unit, size, below in (("s", 1, 60), ("min", 60, 60), ("h", 3600, 24),
                              ("d", 86400, math.inf)):
        n = round(seconds / size)  # rounded first: 59.6 s is "1 min", not "60 s"
        if n < below:
            return gettext(f"in %(n)s {unit}" if future else f"%(n)s {unit} ago", n=n)
    raise AssertionError("unreachable: days have no upper bound")


def moment(ts: Any, now: float | None = None, relative: bool = True) -> Markup:
    """A `<time>` for unix seconds: UTC text and how long ago (rewritten by oneha.js into the
    reader's time zone); `-` when unknown."""
    text = utc(ts)
    if text == "-":
        return Markup("<span class=\"muted\">-</span>")
    seconds = float(ts)
    shown = text.replace("T", " ").replace("Z", " UTC")
    if relative:
        shown += " · " + ago(seconds, time.time() if now is None else now)
    extra = "" if relative else " data-absolute"
    return Markup(f'<time datetime="{text}" data-t="{seconds:.0f}" title="{text}"{extra}>'
                  f"{escape(shown)}</time>")


def install(app: Flask) -> None:
    """`_()`/`ngettext()` in every template of `app` (the console's, the approval pages', the
    login's), in the request's language; `moment` for times; `page_language()`."""
    env = app.jinja_env
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext, ngettext, newstyle=True)
    env.filters["moment"] = moment
    env.globals.update(page_language=language, page_languages=NAMES)
