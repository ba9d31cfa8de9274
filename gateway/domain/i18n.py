"""The words of the message templates, per receiver language (`Receiver.language`).

English is the source language: a template says `_("oneha detected a problem.")` and English
receivers read exactly that. Another language is one dict here, from the English text to its
own (a pair for `ngettext`'s singular and plural); `gateway/domain/messages.py` installs it in
a Jinja environment of that language (`jinja2.ext.i18n`, new-style: `%(name)s` placeholders).
A text missing from a catalog is said in English rather than not at all
(`tests/unit/test_messages_i18n.py` keeps the catalogs complete).

Sentences built from an incident's data (titles, next steps, remediation's notices) are
`phrases.py`'s; OpenNebula's state names (ERROR, ACTIVE/RUNNING) and commands stay as they are.
"""

from __future__ import annotations

from typing import Any

SOURCE = "en"
LANGUAGES = (SOURCE, "pt-BR")

PT_BR: dict[str, str | tuple[str, str]] = {
    # headline tags (messages._PREFIX)
    "[FIRING]": "[ALERTA]", "[STILL FIRING]": "[AINDA EM ALERTA]", "[RESOLVED]": "[RESOLVIDO]",
    "[ESCALATED]": "[ESCALADO]", "[APPROVAL NEEDED]": "[APROVAÇÃO NECESSÁRIA]",
    "[NEEDS A HUMAN]": "[PRECISA DE UMA PESSOA]", "[PROGRESS]": "[ANDAMENTO]",
    "[TEST]": "[TESTE]",
    # values shown as words
    "firing": "em alerta", "acknowledged": "reconhecido", "remediating": "em remediação",
    "resolved": "resolvido", "critical": "crítico", "warning": "aviso", "info": "informativo",
    "yes": "sim", "no": "não", "unknown": "desconhecido", "not running yet": "ainda não voltou",
    "Incident %(id)s.": "Incidente %(id)s.", "Incident %(id)s": "Incidente %(id)s",
    # impact table (messages._impact_headers)
    "Action": "Ação", "Downtime": "Tempo fora do ar", "Memory lost": "Memória perdida",
    "Connections dropped": "Conexões derrubadas", "Data-loss risk": "Risco de perda de dados",
    # _parts.j2
    "since %(at)s (%(took)s)": "desde %(at)s (%(took)s)",
    "on host %(host)s": "no host %(host)s", "cluster %(cluster)s": "cluster %(cluster)s",
    "oneha detected a problem.": "O oneha detectou um problema.",
    "Reminder: this problem is still open.": "Lembrete: este problema continua aberto.",
    "Reminder: this problem is still open %(since)s.":
        "Lembrete: este problema continua aberto %(since)s.",
    "Escalated to you (%(receiver)s): nobody acknowledged this incident.":
        "Escalado para você (%(receiver)s): ninguém reconheceu este incidente.",
    "Escalated to you (%(receiver)s): nobody acknowledged this incident, open %(since)s.":
        "Escalado para você (%(receiver)s): ninguém reconheceu este incidente, aberto "
        "%(since)s.",
    "oneha has a remediation plan and needs a human to approve it before acting.":
        "O oneha tem um plano de remediação e precisa que uma pessoa o aprove antes de agir.",
    "oneha will do nothing further for this incident by itself; a human has to look at it now.":
        "O oneha não fará mais nada sozinho neste incidente; uma pessoa precisa olhar agora.",
    "Remediation of this incident moved on.": "A remediação deste incidente avançou.",
    "This incident is resolved.": "Este incidente foi resolvido.",
    "This incident is resolved at %(at)s.": "Este incidente foi resolvido em %(at)s.",
    "This incident is resolved at %(at)s after %(took)s.":
        "Este incidente foi resolvido em %(at)s, após %(took)s.",
    "This is a test message from oneha to receiver %(receiver)s, sent at %(at)s. If you can "
    "read it, delivery to this channel works.":
        "Esta é uma mensagem de teste do oneha para o destinatário %(receiver)s, enviada em "
        "%(at)s. Se você consegue lê-la, a entrega por este canal funciona.",
    # chat.j2
    "%(what)s resolved.": "Resolvido: %(what)s.",
    "%(what)s resolved at %(at)s.": "Resolvido em %(at)s: %(what)s.",
    "%(what)s resolved at %(at)s after %(took)s.": "Resolvido em %(at)s, após %(took)s: %(what)s.",
    "Impact: %(vms)s VM(s), memory state lost on %(lost)s.":
        "Impacto: %(vms)s VM(s), estado da memória perdido em %(lost)s.",
    "Impact: %(vms)s VM(s), memory state lost on %(lost)s, longest downtime %(longest)s.":
        "Impacto: %(vms)s VM(s), estado da memória perdido em %(lost)s, maior tempo fora do ar "
        "%(longest)s.",
    "Details: %(url)s": "Detalhes: %(url)s",
    "is in %(state)s": "está em %(state)s",
    "%(count)s affected.": "Afetados: %(count)s.",
    "%(count)s affected: %(names)s.": "Afetados (%(count)s): %(names)s.",
    "%(count)s affected: %(names)s and %(more)s more.":
        "Afetados (%(count)s): %(names)s e mais %(more)s.",
    "Next: %(step)s — approve or deny: %(url)s": "Próximo passo: %(step)s — aprovar ou negar: "
                                                 "%(url)s",
    "Approve or deny: %(url)s": "Aprovar ou negar: %(url)s",
    "Next: %(step)s — %(url)s": "Próximo passo: %(step)s — %(url)s",
    "Next: %(step)s": "Próximo passo: %(step)s",
    "… and %(more)s earlier (see the console)": "… e mais %(more)s anteriores (veja o console)",
    # mail.j2 (field names are padded by the `field` filter)
    "Incident": "Incidente", "Status": "Situação", "Object": "Objeto", "State": "Estado", "Host": "Host",
    "Cluster": "Cluster", "Started": "Início", "Resolved": "Resolvido", "Labels": "Rótulos",
    "Affected": "Afetados",
    "Details:": "Detalhes:", "Affected (%(count)s):": "Afetados (%(count)s):",
    "on %(host)s": "em %(host)s",
    "… and %(more)s more (%(total)s in total)": "… e mais %(more)s (%(total)s no total)",
    "Remediation:": "Remediação:", "What happened:": "O que aconteceu:",
    "What oneha will do next:": "O que o oneha fará em seguida:",
    "Plan (%(num)d action):": ("Plano (%(num)d ação):", "Plano (%(num)d ações):"),
    "… and %(more)s more": "… e mais %(more)s",
    "Approve or deny the plan:": "Aprove ou negue o plano:",
    "Impact:": "Impacto:",
    "… and %(more)s more VMs": "… e mais %(more)s VMs",
    # The timeline's lines stay as they were recorded (English); only its heading is translated.
    "Timeline:": "Linha do tempo (registro em inglês):",
    "Timeline (last %(shown)s of %(total)s):":
        "Linha do tempo (registro em inglês; últimas %(shown)s de %(total)s):",
    "Console: %(url)s": "Console: %(url)s",
    "oneha · incident %(id)s · sent %(at)s": "oneha · incidente %(id)s · enviado em %(at)s",
    "oneha · sent %(at)s": "oneha · enviado em %(at)s",
}

CATALOGS: dict[str, dict[str, str | tuple[str, str]]] = {SOURCE: {}, "pt-BR": PT_BR}


def gettext(lang: str, message: str) -> str:
    found = CATALOGS.get(lang, {}).get(message, message)
    return found[0] if isinstance(found, tuple) else found


def ngettext(lang: str, singular: str, plural: str, n: int) -> str:
    found = CATALOGS.get(lang, {}).get(singular)
    if isinstance(found, tuple):
        return found[0] if n == 1 else found[1]
    return singular if n == 1 else plural


def t(lang: str, message: str, **params: Any) -> str:
    """A catalog text with its `%(name)s` placeholders filled (the Python side of templates)."""
    text = gettext(lang, message)
    return text % params if params else text


class Translations:
    """One language's gettext and ngettext, as `Environment.install_gettext_callables` wants."""

    def __init__(self, lang: str):
        if lang not in CATALOGS:
            raise ValueError(f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
        self.lang = lang

    def gettext(self, message: str) -> str:
        return gettext(self.lang, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return ngettext(self.lang, singular, plural, n)
