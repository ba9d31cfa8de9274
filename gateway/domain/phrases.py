"""Sentences made from an incident's data, per language: titles (`Incident.headline`,
`grouping.group_summary`), next steps (`story.next_step_of`), remediation's notices
(`Notice.code` + `params`) and the impact report's data-loss risk (`impact.data_loss`).

What is stored is the data and the English sentence (for the timeline, the console and the CLI,
and for whatever reads an old record); a message is phrased in its receiver's language when it
is rendered (`localized`). A key a language does not know — or data written before keys
existed — is told by the recorded English text, so an old queued notification still renders.

A phrase is `{"key": ..., **params}`; each language maps a key to a function of the params.
OpenNebula's names stay as they are (states, actions, commands); only ERROR in a Portuguese
title reads "em ERRO", as people say it (the message's state field keeps ERROR). Texts others
wrote stay as written (an alert's summary, OpenNebula's errors); the planner's reasons and
warnings, and the findings' explanations (`details`), are not data yet: they stay in English.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .i18n import SOURCE

Params = Mapping[str, Any]
BY_ONEHA = " (by oneha)"

# Why a VM is left to people, by the plan's skip code (the codes of VMs nothing will recover).
LEFT_ALONE = {
    "en": {
        "wont_fit": "no remaining host has room",
        "wait": "must wait for its host (its disks cannot move, or resched is not allowed)",
        "opt_out": "opted out by ONEHA_POLICY",
        "disallowed": "the action it needs is not allowed by the policy",
    },
    "pt-BR": {
        "wont_fit": "nenhum host restante tem espaço",
        "wait": "à espera do próprio host (os discos não podem ser movidos, ou o resched não "
                "é permitido)",
        "opt_out": "fora da remediação pelo ONEHA_POLICY",
        "disallowed": "a ação necessária não é permitida pela política",
    },
}


def _ack(p: Params, text: str, key: str = "id") -> str:
    """A part that names oneha's own ids (`oneha ack <incident>`, a plan's id): said in the
    mail and the records, left out of a short (chat) message — people act from its link."""
    return "" if p.get("short") else text.format(**{key: p[key]})


def _s(n: int, one: str = "", many: str = "s") -> str:
    return one if n == 1 else many


def _on_host(host: str, word: str) -> str:
    return f" {word} {host}" if host else ""


# -- English: the sentences oneha records ----------------------------------------------------------
def _en_host_failed(p: Params) -> str:
    return f"Host {p['host']} is in {p['state']}" + _en_affected(p.get("vms", 0))


def _en_affected(vms: int) -> str:
    return f" — {vms} VM{_s(vms)} affected" if vms else ""


def _en_left_alone(p: Params) -> str:
    reasons = "; ".join(f"{LEFT_ALONE['en'][code]}: {', '.join(names)}"
                        for code, names in p["left"].items())
    return (f"{p['count']} VM(s) will not be recovered by oneha — {reasons}."
            + (f" ({p['example']})" if p.get("example") else ""))


EN: dict[str, Callable[[Params], str]] = {
    "host_failed": _en_host_failed,
    "host_recovered": lambda p: f"Host {p['host']} recovered (was in {p['was']})"
                                + _en_affected(p.get("vms", 0)),
    "host_vms_run_again": lambda p: f"Host {p['host']} failed — its {p['vms']} "
                                    f"VM{_s(p['vms'])} run{_s(p['vms'], 's', '')} again elsewhere",
    "vm_failed": lambda p: f"VM {p['vm']} ({p['id']}) is {p['state']}"
                           + _on_host(p.get("host", ""), "on host"),
    "vm_recovered": lambda p: f"VM {p['vm']} ({p['id']}) recovered"
                              + _on_host(p.get("host", ""), "on host"),
    "vm_merged": lambda p: f"VM {p['vm']} ({p['id']}) is {p['state']}"
                           + _on_host(p.get("host", ""), "on host")
                           + f" — told with host incident {p['into']}",
    "alert": lambda p: ("Resolved: " if p.get("resolved") else "")
                       + (p.get("said") or f"{p['name']} is firing")
                       + (f" (host {p['host']})" if p.get("host") else ""),
    "storm_guard": lambda p: f"Storm guard stopped automatic remediation: {p['state']}",
    "storm_over": lambda p: "Storm over: oneha's automatic remediation may act again",
    "finding": lambda p: f"{p['resource'].title()} {p['name']}: {p['condition']}"
                         + (" resolved" if p.get("resolved") else ""),
    "group_open": lambda p: f"{p['count']} open incidents ({p['group']}): {_kinds(p)}"
                            + (f"; {p['resolved']} resolved" if p.get("resolved") else ""),
    "group_resolved": lambda p: f"Resolved: {p['count']} incidents ({p['group']})",
    "test_message": lambda p: "oneha test notification",
    "data_loss": lambda p: "; ".join(_en_risk(part) for part in p["parts"]),
    # next steps
    "next_resolved": lambda p: "nothing: the incident is resolved",
    "next_remediating": lambda p: "oneha is remediating; a message follows when it is verified",
    "next_acknowledged": lambda p: f"acknowledged by {p['by']}; no reminders until it resolves",
    "next_maintenance": lambda p: "host is in maintenance: no action",
    "next_alert": lambda p: (f"oneha only notifies for this alert (it comes from Alertmanager) "
                             f"and does not remediate it: a person acts"
                             + _ack(p, "; `oneha ack {id}` stops the reminders")),
    "next_plan": lambda p: (f"oneha plans a recovery (a message follows when there is a plan to "
                            f"approve or news)"
                            + _ack(p, "; `oneha ack {id}` stops the reminders")),
    "next_person": lambda p: (f"oneha does not remediate this kind of problem: a person acts"
                              + _ack(p, "; `oneha ack {id}` stops the reminders")),
    # remediation's notices
    "approval_needed": lambda p: (f"Approval needed: {', '.join(p['actions'])} {p['count']} "
                                  f"VM(s)" + _ack(p, " (plan {plan})", "plan")
                                  + f"; the link below is valid until {p['until']}."
                                  + "".join(f" Warning: {w}." for w in p.get("warnings", ()))),
    "left_alone": _en_left_alone,
    "vm_gave_up": lambda p: (f"VM {p['vm'] or p['id']} ({p['id']}) was not recovered after "
                             f"{p['attempts']} attempt(s): {p['reason']}. oneha leaves it alone "
                             f"now."),
    "plan_stopped": lambda p: ("Remediation plan" + _ack(p, " {plan}", "plan")
                               + f" stopped: {p['error']}. Nothing "
                               f"more is done automatically: the VMs not running yet need a "
                               f"human."),
    "host_step_failed": lambda p: (f"{p['action']} of host {p['host']} failed, so its VMs are "
                                   f"not moved: {p['error']}"),
}


def _en_risk(part: Params) -> str:
    name = part.get("image") or f"disk {part.get('disk_id')}"
    return {"recreated": "recreated from its images: changes since deploy are lost",
            "no_disks": "no disks reported",
            "shared": f"{name}: persistent on shared storage, only unflushed writes at risk",
            "local": f"{name}: on local storage of the failed host, changes since deploy lost",
            "non_persistent": f"{name}: non-persistent, changes since deploy lost"}[part["risk"]]


def _kinds(p: Params) -> str:
    return ", ".join(f"{n}× {label}" for n, label in p["kinds"])


# -- Brazilian Portuguese --------------------------------------------------------------------------
def _pt_state(state: str) -> str:
    """A state in a Portuguese sentence: "ERRO", the rest as OpenNebula names it."""
    state = state_label("pt-BR", str(state))
    return "ERRO" + state[5:] if state.startswith("ERROR") else state


def _pt_affected(vms: int) -> str:
    return f" — {vms} VM{_s(vms)} afetada{_s(vms)}" if vms else ""


def _pt_left_alone(p: Params) -> str:
    n = p["count"]
    reasons = "; ".join(f"{LEFT_ALONE['pt-BR'][code]}: {', '.join(names)}"
                        for code, names in p["left"].items())
    # The example (why one VM does not fit) is the planner's English detail: the timeline has it.
    return f"{n} VM{_s(n)} não ser{_s(n, 'á', 'ão')} recuperada{_s(n)} pelo oneha — {reasons}."


def _pt_vm_gave_up(p: Params) -> str:
    n, vm = p["attempts"], f"A VM {p['vm'] or p['id']} ({p['id']})"
    if p.get("why") == "gone":
        return f"{vm} sumiu durante a recuperação; o oneha não vai mais mexer nela."
    return (f"{vm} não foi recuperada após {n} tentativa{_s(n)}; o oneha não vai mais mexer "
            f"nela.")


def _pt_risk(part: Params) -> str:
    name = part.get("image") or f"disco {part.get('disk_id')}"
    return {"recreated": "recriada a partir das imagens: as alterações desde o deploy se perdem",
            "no_disks": "nenhum disco informado",
            "shared": f"{name}: persistente em armazenamento compartilhado, só as escritas ainda "
                      f"não gravadas correm risco",
            "local": f"{name}: no armazenamento local do host que falhou, as alterações desde o "
                     f"deploy se perdem",
            "non_persistent": f"{name}: não persistente, as alterações desde o deploy se "
                              f"perdem"}[part["risk"]]


def _pt_resource(resource: str) -> str:
    return "Front-end" if resource == "FRONTEND" else resource.title()


def _pt_storm(p: Params) -> str:
    said = (f"{p['failed']} de {p['hosts']} hosts em ERRO" if "failed" in p
            else p["state"])
    return f"A proteção contra falhas em massa parou a remediação automática: {said}"


PT_BR: dict[str, Callable[[Params], str]] = {
    "host_failed": lambda p: f"Host {p['host']} em {_pt_state(p['state'])}"
                             + _pt_affected(p.get("vms", 0)),
    "host_recovered": lambda p: f"Host {p['host']} recuperado (estava em {_pt_state(p['was'])})"
                                + _pt_affected(p.get("vms", 0)),
    "host_vms_run_again": lambda p: (
        f"Host {p['host']} falhou — sua VM voltou a rodar em outro host" if p["vms"] == 1
        else f"Host {p['host']} falhou — suas {p['vms']} VMs voltaram a rodar em outros hosts"),
    "vm_failed": lambda p: f"VM {p['vm']} ({p['id']}) em {_pt_state(p['state'])}"
                           + _on_host(p.get("host", ""), "no host"),
    "vm_recovered": lambda p: f"VM {p['vm']} ({p['id']}) recuperada"
                              + _on_host(p.get("host", ""), "no host"),
    "vm_merged": lambda p: f"VM {p['vm']} ({p['id']}) em {_pt_state(p['state'])}"
                           + _on_host(p.get("host", ""), "no host")
                           + f" — informada com o incidente do host {p['into']}",
    # An alert speaks with its own summary, in the language its rule was written in.
    "alert": lambda p: ("Resolvido: " if p.get("resolved") else "")
                       + (p.get("said") or f"{p['name']} em alerta")
                       + (f" (host {p['host']})" if p.get("host") else ""),
    "storm_guard": _pt_storm,
    "storm_over": lambda p: "Fim das falhas em massa: a remediação automática do oneha pode "
                            "agir de novo",
    "finding": lambda p: (f"{_pt_resource(p['resource'])} {p['name']}: {p['condition']}"
                          + (" resolvido" if p.get("resolved") else "")),
    "group_open": lambda p: (f"{p['count']} incidentes abertos ({p['group']}): {_kinds(p)}"
                             + (f"; {p['resolved']} resolvido{_s(p['resolved'])}"
                                if p.get("resolved") else "")),
    "group_resolved": lambda p: f"Resolvidos: {p['count']} incidentes ({p['group']})",
    "test_message": lambda p: "Notificação de teste do oneha",
    "data_loss": lambda p: "; ".join(_pt_risk(part) for part in p["parts"]),
    "next_resolved": lambda p: "nada: o incidente está resolvido",
    "next_remediating": lambda p: "o oneha está remediando; outra mensagem segue quando a "
                                  "recuperação for verificada",
    "next_acknowledged": lambda p: f"reconhecido por {p['by']}; sem lembretes até ser resolvido",
    "next_maintenance": lambda p: "o host está em manutenção: nenhuma ação",
    "next_alert": lambda p: (f"o oneha só notifica este alerta (ele vem do Alertmanager) e não "
                             f"o remedia: uma pessoa age"
                             + _ack(p, "; `oneha ack {id}` interrompe os lembretes")),
    "next_plan": lambda p: (f"o oneha planeja uma recuperação (outra mensagem segue quando houver "
                            f"um plano para aprovar ou novidades)"
                            + _ack(p, "; `oneha ack {id}` interrompe os lembretes")),
    "next_person": lambda p: (f"o oneha não remedia este tipo de problema: uma pessoa age"
                              + _ack(p, "; `oneha ack {id}` interrompe os lembretes")),
    "approval_needed": lambda p: (f"Aprovação necessária: {', '.join(p['actions'])} em "
                                  f"{p['count']} VM{_s(p['count'])}"
                                  + _ack(p, " (plano {plan})", "plan")
                                  + f"; o link abaixo vale até {p['until']}."
                                  + "".join(f" Aviso: {w}." for w in p.get("warnings", ()))),
    "left_alone": _pt_left_alone,
    "vm_gave_up": _pt_vm_gave_up,
    "plan_stopped": lambda p: ("O plano de remediação" + _ack(p, " {plan}", "plan")
                               + f" parou: {p['error']}. Nada "
                               f"mais será feito automaticamente: as VMs que ainda não voltaram "
                               f"precisam de uma pessoa."),
    "host_step_failed": lambda p: (f"A ação {p['action']} no host {p['host']} falhou; por isso "
                                   f"as VMs dele não foram movidas: {p['error']}"),
}

PHRASES: dict[str, dict[str, Callable[[Params], str]]] = {SOURCE: EN, "pt-BR": PT_BR}


def state_label(lang: str, label: str) -> str:
    """A state as a message's field shows it: OpenNebula's name, and "(by oneha)" — the mark of
    a host oneha itself disabled (correlation.py) — in `lang`."""
    if lang == "pt-BR" and label.endswith(BY_ONEHA):
        return label[: -len(BY_ONEHA)] + " (pelo oneha)"
    return label


def say(lang: str, key: str, params: Params | None = None) -> str:
    """The sentence `key` in `lang`. KeyError for a key (or a param) the language lacks."""
    return PHRASES[lang][key](params or {})


def localized(lang: str, phrase: Any, recorded: str, short: bool = False) -> str:
    """`phrase` ({"key": ..., **params}) said in `lang`; the recorded English text for English,
    for an unknown key and for data that does not fit the key (an old or foreign record).
    `short`: the chat form, without oneha's internal ids (English is said again for it)."""
    if (lang == SOURCE and not short) or not isinstance(phrase, Mapping) \
            or not isinstance(phrase.get("key"), str):
        return recorded
    try:
        return say(lang, phrase["key"], {**phrase, "short": True} if short else phrase)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return recorded
