"""The Portuguese of the login, approval and refusal pages, in the pages' one catalog.

The console's words are in `page_text.PT_BR`; these pages are another owner's, so their words
live here and `install()` adds them to the same catalog (never replacing an entry of the console's)
when a blueprint of theirs is registered. `tests/unit/test_auth_text.py` keeps it complete.
"""

from __future__ import annotations

from gateway.web import page_text

PT_BR: dict[str, str | tuple[str, str]] = {
    # auth/login.html and login.py
    "Log in to oneha": "Entrar no oneha", "Name": "Nome", "Password": "Senha",
    "Log in": "Entrar", "Log out": "Sair", "Continue": "Continuar",
    "Wrong name or password.": "Nome ou senha incorretos.",
    "Too many failed attempts: try again in %(minutes)s min.":
        "Tentativas demais: tente de novo em %(minutes)s min.",
    "The form was stale: try again.": "O formulário expirou: tente de novo.",
    "Logged in as %(name)s (%(role)s).": "Conectado como %(name)s (%(role)s).",
    "No user is configured yet: run 'oneha -c FILE user add NAME --role admin' on the gateway "
    "and restart it.": "Nenhum usuário configurado: rode 'oneha -c ARQUIVO user add NOME "
                       "--role admin' no gateway e reinicie-o.",
    "viewer": "leitor", "approver": "aprovador", "admin": "administrador",
    # auth/error.html
    "Incidents": "Incidentes",
    # approvals/page.html
    "Approve plan %(id)s": "Aprovar o plano %(id)s", "Remediation plan": "Plano de remediação",
    "Host": "Host", "%(num)d VM": ("%(num)d VM", "%(num)d VMs"), "Status:": "Situação:",
    "Remediation is paused by %(by)s: %(reason)s. An approval is recorded; the actions wait "
    "for `oneha resume`.": "A remediação está pausada por %(by)s: %(reason)s. A aprovação é "
                           "registrada; as ações esperam `oneha resume`.",
    "Deciding as": "Decidindo como", "Approve": "Aprovar", "Deny": "Negar",
    "You are logged in as %(name)s (%(role)s): deciding needs the approver role.":
        "Você entrou como %(name)s (%(role)s): decidir exige o papel de aprovador.",
    "Your name (recorded as unverified):": "Seu nome (registrado como não verificado):",
    "or log in": "ou entre", "Deciding needs a login as an approver.":
        "Decidir exige entrar como aprovador.",
    "Log in to approve or deny": "Entrar para aprovar ou negar",
    "This link works once and expires": "Este link vale uma vez e expira",
    "Incident": "Incidente", "Mode:": "Modo:", "Actions": "Ações", "action": "ação",
    "why": "por quê", "planned for": "planejado para", "live state now": "estado agora",
    "host now": "host agora", "Left alone": "Deixadas como estão",
    # approvals/done.html and refused.html
    "Plan %(decision)s": "Plano %(decision)s", "approved": "aprovado", "denied": "negado",
    "Recorded: %(decision)s by %(who)s.": "Registrado: %(decision)s por %(who)s.",
    "The plan is now": "O plano agora está", "Follow the incident": "Acompanhar o incidente",
    "Approval refused": "Aprovação recusada", "Nothing was executed.": "Nada foi executado.",
}


def install(app) -> None:
    """`_()` and friends in `app`'s templates (page_text), with these words in the catalog
    (idempotent; the console's entries win)."""
    page_text.install(app)
    catalog = page_text.CATALOGS["pt-BR"]
    for english, portuguese in PT_BR.items():
        catalog.setdefault(english, portuguese)
