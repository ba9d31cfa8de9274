"""Every text of the login, approval and refusal pages has its Portuguese (auth_text.PT_BR or
the console's catalog), and the placeholders match."""

import re
from pathlib import Path

import pytest

from gateway.web import auth_text, page_text

TEMPLATES = Path(auth_text.__file__).resolve().parent.parent / "templates"
PAGES = sorted([*(TEMPLATES / "approvals").glob("*.html"), *(TEMPLATES / "auth").glob("*.html")])
SOURCES = [Path(auth_text.__file__).parent / "login.py"]
CALL = re.compile(r"""(?:\b_|ngettext)\(\s*(["'])((?:(?!\1).)+)\1""", re.S)


def texts() -> set[str]:
    found = set()
    for path in [*PAGES, *SOURCES]:
        found |= {m.group(2) for m in CALL.finditer(path.read_text())}
    return found


def test_the_extraction_sees_the_pages():
    assert len(PAGES) >= 6 and len(texts()) > 40


@pytest.mark.parametrize("text", sorted(texts()))
def test_every_text_has_its_portuguese(text):
    portuguese = auth_text.PT_BR.get(text) or page_text.PT_BR.get(text)
    assert portuguese, f"no pt-BR for {text!r} (gateway/web/auth_text.py PT_BR)"
    for form in (portuguese if isinstance(portuguese, tuple) else (portuguese,)):
        assert sorted(re.findall(r"%\((\w+)\)", form)) == sorted(re.findall(r"%\((\w+)\)", text))
