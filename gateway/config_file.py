"""Rewrite one top-level section of the YAML configuration, leaving the rest of the file as the
person wrote it (comments, order, quoting): `oneha user add` and `oneha token add` change only
`auth:`. PyYAML cannot round-trip comments, so the section is replaced as text — the lines from
`auth:` to the next line at column 0 — and the result is parsed and validated before it replaces
the file (atomically, keeping the file's mode; a new file is made readable by its owner only, as
it holds hashes)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .config import settings_from_dict
from .errors import ConfigError


def read_mapping(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping at the top level")
    return data


def _replace_block(text: str, key: str, block: str) -> str:
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(rf"{re.escape(key)}\s*:", line)),
                 None)
    if start is None:
        return text + ("\n" if text and not text.endswith("\n") else "") + block
    end = start + 1
    while end < len(lines) and (lines[end].strip() == "" or lines[end][0] in " \t"):
        end += 1
    return "".join(lines[:start]) + block + "".join(lines[end:])


def write_section(path: Path, key: str, value: Any) -> None:
    """Set the top-level `key` of the YAML file at `path` to `value` (the file may not exist)."""
    text = path.read_text() if path.exists() else ""
    before = read_mapping(path)
    block = yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True)
    new_text = _replace_block(text, key, block)
    after = yaml.safe_load(new_text) or {}
    if after != {**before, key: value}:  # the text edit must have changed exactly that section
        raise ConfigError(f"could not rewrite {key}: in {path} safely (is it written in an "
                          f"unusual layout?); add it by hand:\n{block}")
    settings_from_dict(after, env={}, source=str(path))  # refuse to write an invalid file
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new_text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
