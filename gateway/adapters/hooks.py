"""oneha's hooks in OpenNebula: read the `hook_templates/*.tmpl` files, install them
(`one.hook.allocate`), list (`one.hookpool.info`) and remove them (`one.hook.delete`) —
idempotent by hook NAME (all start with `oneha-`).

The OpenNebula client is a parameter (`gateway.adapters.opennebula.OpenNebula`, over pyone).
Every change is returned as a `HookChange` value with the reason, so the CLI, tests and logs say
the same thing.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from gateway.errors import ConfigError

PREFIX = "oneha-"
DEFAULT_COMMAND = "/var/lib/one/remotes/hooks/oneha/oneha-hook"
SENDER_NAME = "oneha-hook"
# What oned stores for a VM hook's ON=... (HookStateVM.cc): ON is erased, STATE/LCM_STATE kept.
VM_ON = {"PROLOG": ("ACTIVE", "PROLOG"), "RUNNING": ("ACTIVE", "RUNNING"),
         "SHUTDOWN": ("ACTIVE", "EPILOG"), "STOP": ("STOPPED", "LCM_INIT"),
         "DONE": ("DONE", "LCM_INIT"), "UNKNOWN": ("ACTIVE", "UNKNOWN")}
# Attributes whose stored value must equal the template's for a hook to count as installed.
COMPARED = ("COMMAND", "ARGUMENTS", "ARGUMENTS_STDIN", "REMOTE", "RESOURCE", "STATE", "LCM_STATE")
CASE_FREE = {"ARGUMENTS_STDIN", "REMOTE", "RESOURCE", "STATE", "LCM_STATE", "TYPE"}
_LINE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*$')


@dataclass(frozen=True)
class HookTemplate:
    """One hook as `onehook create` would read it from a .tmpl file."""

    path: Path
    attributes: dict[str, str]

    @property
    def name(self) -> str:
        return self.attributes["NAME"]

    def with_command(self, command: str | None) -> "HookTemplate":
        if not command:
            return self
        return HookTemplate(self.path, {**self.attributes, "COMMAND": command})

    def render(self) -> str:
        """OpenNebula template syntax, the string `one.hook.allocate` takes."""
        return "".join(f'{k} = "{_quote(v)}"\n' for k, v in self.attributes.items())

    def expected(self) -> dict[str, str]:
        """The attributes as oned stores them (ON=... turned into STATE/LCM_STATE)."""
        attrs = dict(self.attributes)
        on = attrs.pop("ON", "").upper()
        if on in VM_ON:
            attrs["STATE"], attrs["LCM_STATE"] = VM_ON[on]
        return attrs


@dataclass(frozen=True)
class InstalledHook:
    id: int
    name: str
    type: str
    template: dict[str, str] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return self.template.get("COMMAND", "")

    @property
    def trigger(self) -> str:
        """`HOST/ERROR`, `VM/ACTIVE/UNKNOWN` — the way OpenNebula keys state hooks."""
        parts = [self.template.get(k, "") for k in ("RESOURCE", "STATE", "LCM_STATE")]
        return "/".join(p for p in parts if p) or self.template.get("CALL", "")


@dataclass(frozen=True)
class HookChange:
    name: str
    action: str  # created | replaced | unchanged | removed
    hook_id: int | None
    reason: str


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


# ------------------------------------------------------------------------------------------------
# templates on disk

def templates_dir(explicit: str | os.PathLike | None = None) -> Path:
    """`explicit`, else $ONEHA_HOOK_TEMPLATES, else the repository's (or installed) copy."""
    if explicit is not None:
        if not Path(explicit).is_dir():
            raise ConfigError(f"hook templates directory {explicit} does not exist")
        return Path(explicit)
    for candidate in (os.environ.get("ONEHA_HOOK_TEMPLATES"),
                      Path(__file__).resolve().parents[2] / "hook_templates",
                      Path(sys.prefix) / "share" / "oneha" / "hook_templates"):
        if candidate and (Path(candidate) / SENDER_NAME).is_file():
            return Path(candidate)
    raise ConfigError("cannot find oneha's hook_templates/ directory; pass --templates DIR or "
                      "set ONEHA_HOOK_TEMPLATES")


def sender_path(directory: Path | None = None) -> Path:
    return (directory or templates_dir()) / SENDER_NAME


def parse_template(text: str, source: str = "<template>") -> dict[str, str]:
    """The subset of OpenNebula's template syntax hooks use: `KEY = "value"` lines, # comments."""
    attrs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ConfigError(f"{source}:{number}: expected KEY = \"value\", got {line.strip()!r}")
        key = match.group(1).upper()
        if key in attrs:
            raise ConfigError(f"{source}:{number}: {key} is set twice")
        attrs[key] = _unquote(match.group(2)) if match.group(2) is not None else match.group(3)
    for required in ("NAME", "TYPE", "COMMAND"):
        if required not in attrs:
            raise ConfigError(f"{source}: no {required} (OpenNebula refuses a hook without it)")
    if not attrs["NAME"].startswith(PREFIX):
        raise ConfigError(f"{source}: NAME {attrs['NAME']!r} must start with {PREFIX!r} "
                          "(that is how oneha recognises its own hooks)")
    if attrs["TYPE"].lower() == "state" and "RESOURCE" not in attrs:
        raise ConfigError(f"{source}: a state hook needs RESOURCE (HOST or VM)")
    return attrs


def load_templates(directory: str | os.PathLike | None = None,
                   command: str | None = None) -> list[HookTemplate]:
    """Every `*.tmpl` under the directory (sorted), COMMAND replaced when `command` is given."""
    root = templates_dir(directory)
    templates = [HookTemplate(p, parse_template(p.read_text(), str(p))).with_command(command)
                 for p in sorted(root.rglob("*.tmpl"))]
    names = [t.name for t in templates]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"hook NAME used by more than one template: {', '.join(dupes)}")
    if not templates:
        raise ConfigError(f"no *.tmpl files in {root}")
    return templates


# ------------------------------------------------------------------------------------------------
# OpenNebula, through the shared client (gateway.adapters.opennebula.OpenNebula: pyone with real
# timeouts, reads from any healthy front-end, writes to the Raft leader). Its errors are already
# ours: `OneCallError` (a `Permanent`, OpenNebula said no) and `Transient` (nobody answered).

def list_hooks(one, prefix: str = PREFIX) -> list[InstalledHook]:
    """oneha's hooks in the hook pool (all of them when prefix is "")."""
    hooks = [InstalledHook(id=int(h["id"]), name=h["name"], type=h["type"],
                           template={k.upper(): v for k, v in h["template"].items()})
             for h in one.hooks() if h["name"].startswith(prefix)]
    return sorted(hooks, key=lambda h: h.id)


def differences(template: HookTemplate, hook: InstalledHook) -> list[str]:
    """What differs between a template and the installed hook of the same NAME (empty: same)."""
    want = template.expected()
    diffs = []
    if hook.type.lower() != want["TYPE"].lower():
        diffs.append(f"TYPE {hook.type!r} != {want['TYPE']!r}")
    for key in COMPARED + (("TIMEOUT",) if "TIMEOUT" in hook.template else ()):
        have, wanted = hook.template.get(key, ""), want.get(key, "")
        if key in CASE_FREE:
            have, wanted = have.lower(), wanted.lower()
        if have != wanted:
            diffs.append(f"{key} {hook.template.get(key, '')!r} != {want.get(key, '')!r}")
    return diffs


def install(one, templates: Iterable[HookTemplate]) -> list[HookChange]:
    """Create missing hooks, replace ones whose definition changed, leave the rest alone."""
    installed = {h.name: h for h in list_hooks(one)}
    changes = []
    for template in templates:
        current = installed.get(template.name)
        if current is not None:
            diffs = differences(template, current)
            if not diffs:
                changes.append(HookChange(template.name, "unchanged", current.id,
                                          "installed with the same definition"))
                continue
            # Delete + allocate (NAME is unique, so not the other way round): the hook becomes
            # exactly the file's by the same path as a first install; only its id changes. A
            # state change in the few ms between is left to the reconciler, like any missed hook.
            one.hook_delete(current.id)
            new_id = one.hook_allocate(template.render())
            changes.append(HookChange(template.name, "replaced", int(new_id),
                                      f"was hook {current.id}; " + "; ".join(diffs)))
            continue
        new_id = one.hook_allocate(template.render())
        changes.append(HookChange(template.name, "created", int(new_id),
                                  f"from {template.path.name}"))
    return changes


def remove(one, names: Iterable[str] | None = None) -> list[HookChange]:
    """Delete oneha's hooks (all of them, or the given NAMEs); absent ones are not an error."""
    wanted = set(names) if names else None
    if wanted:
        foreign = sorted(n for n in wanted if not n.startswith(PREFIX))
        if foreign:
            raise ConfigError(f"refusing to remove hooks that are not oneha's: {', '.join(foreign)}")
    changes = []
    for hook in list_hooks(one):
        if wanted is not None and hook.name not in wanted:
            continue
        one.hook_delete(hook.id)
        changes.append(HookChange(hook.name, "removed", hook.id, f"trigger {hook.trigger}"))
    return changes
