"""Every text of the readiness page has its Portuguese (readiness_text.PT_BR or the console's
catalog), with the same placeholders."""

import re
from pathlib import Path

import jinja2
import pytest

from gateway.web import page_text, readiness_text

PAGE = (Path(readiness_text.__file__).resolve().parent.parent / "templates" / "console"
        / "readiness" / "page.html")


def texts() -> set[str]:
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    return {msg for _line, _fn, msg in env.extract_translations(PAGE.read_text())
            if isinstance(msg, str)}


def test_the_extraction_sees_the_page():
    assert len(texts()) > 30


@pytest.mark.parametrize("text", sorted(texts()))
def test_every_text_has_its_portuguese(text):
    portuguese = readiness_text.PT_BR.get(text) or page_text.PT_BR.get(text)
    assert portuguese, f"no pt-BR for {text!r} (gateway/web/readiness_text.py PT_BR)"
    assert sorted(re.findall(r"%\((\w+)\)", portuguese)) == sorted(re.findall(r"%\((\w+)\)", text))
