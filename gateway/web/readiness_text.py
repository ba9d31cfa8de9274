"""The Portuguese of the readiness page (`/readiness`), added to the pages' one catalog.

Like `auth_text.py`: this page is another owner's than the console, so its words live here and
`install()` adds them to `page_text`'s catalog (never replacing an entry of the console's).
`tests/unit/test_readiness_page.py` keeps it complete.
"""

from __future__ import annotations

from gateway.web import page_text

PT_BR: dict[str, str | tuple[str, str]] = {
    "Readiness": "Prontidão",
    "If a host failed now": "Se um host falhasse agora",
    "Readiness has not been computed yet: the beat computes it every %(s)s s; "
    "`oneha readiness` computes it now.":
        "A prontidão ainda não foi calculada: o beat a calcula a cada %(s)s s; "
        "`oneha readiness` a calcula agora.",
    "Computed %(at)s with the remediation's own planner, from the live pools.":
        "Calculada %(at)s com o próprio planejador da remediação, a partir dos pools ao vivo.",
    "Cluster": "Cluster", "Hosts": "Hosts",
    "Survives losing any one host": "Sobrevive à perda de qualquer host",
    "Survives losing any two hosts": "Sobrevive à perda de quaisquer dois hosts",
    "Cannot lose": "Não pode perder",
    "%(host)s: %(n)s VMs without room": "%(host)s: %(n)s VMs sem espaço",
    "n/a": "n/d", "yes": "sim", "NO": "NÃO",
    "Host": "Host", "Automatic": "Automático", "After approval": "Após aprovação",
    "Left to people": "Deixadas a pessoas", "Without room": "Sem espaço",
    "Back in": "De volta em", "Survivable": "Sobrevivível",
    "Time to recovery: grace period, then the moves in waves of the concurrency limit at "
    "%(per)s.": "Tempo até a recuperação: período de carência, depois as movimentações em "
                "ondas do limite de concorrência, a %(per)s.",
    "the measured median action time": "o tempo mediano medido por ação",
    "60 s per action (no recovery measured yet)":
        "60 s por ação (nenhuma recuperação medida ainda)",
    "VMs that would not come back by themselves": "VMs que não voltariam sozinhas",
    "VM": "VM", "Would be": "Ficaria", "Why": "Por quê",
    "held for approval": "aguardando aprovação", "left to people": "deixada a pessoas",
    "every VM would come back automatically": "toda VM voltaria automaticamente",
    "The alert path": "O caminho do alerta",
    "Front-end": "Front-end", "Last heartbeat": "Último heartbeat",
    "Refused signatures": "Assinaturas recusadas", "never": "nunca",
    "No front-end is configured (ingest.frontends).":
        "Nenhum front-end configurado (ingest.frontends).",
    "Recent drills": "Exercícios recentes", "Drill": "Exercício", "Sent": "Enviado",
    "Came back through": "Voltou por", "After": "Depois de", "not back": "não voltou",
    "No drill yet: `oneha drill` sends one.": "Nenhum exercício ainda: `oneha drill` envia um.",
    "Checks failing now": "Verificações falhando agora",
    "none: the alert path works": "nenhuma: o caminho do alerta funciona",
}


def install(app) -> None:
    """`_()` in this page's template, with these words in the catalog (idempotent; the console's
    entries win)."""
    page_text.install(app)
    catalog = page_text.CATALOGS["pt-BR"]
    for english, portuguese in PT_BR.items():
        catalog.setdefault(english, portuguese)
