"""The pages' language and times: which language a request reads, the relative times, and a
catalog that covers every text of the console's templates."""

from pathlib import Path

import jinja2
import pytest
from flask import Flask

from gateway.web import page_text

CONSOLE = Path(page_text.__file__).resolve().parent.parent / "templates" / "console"


@pytest.fixture
def app():
    app = Flask("pages-test")
    page_text.install(app)
    return app


@pytest.mark.parametrize("header, language", [
    ("pt-BR,pt;q=0.9,en;q=0.8", "pt-BR"),
    ("pt-PT", "pt-BR"),
    ("en-US,en;q=0.9,pt;q=0.8", "en"),
    ("fr-FR,fr;q=0.9,pt;q=0.5,en;q=0.4", "pt-BR"),
    ("de, en;q=0", None),
    ("en;q=abc, pt;q=0.1", "pt-BR"),
    ("", None),
])
def test_accept_language_picks_the_best_language_we_speak(header, language):
    assert page_text.accepted(header) == language


def test_the_switch_wins_over_the_browser_and_an_unknown_cookie_is_ignored(app):
    with app.test_request_context("/", headers={"Accept-Language": "pt-BR",
                                                 "Cookie": "oneha_lang=en"}):
        assert page_text.language() == "en"
    with app.test_request_context("/", headers={"Accept-Language": "pt-BR",
                                                 "Cookie": "oneha_lang=xx"}):
        assert page_text.language() == "pt-BR"
    with app.test_request_context("/"):
        assert page_text.language() == "en"


def test_a_users_configured_language_comes_before_the_browsers(app):
    from flask import g
    from gateway.domain.auth import Principal
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        g.principal = Principal("ana", "viewer", "session", language="pt-BR")
        assert page_text.language() == "pt-BR"


@pytest.mark.parametrize("delta, en, pt", [
    (3, "just now", "agora mesmo"), (45, "45 s ago", "há 45 s"),
    (12 * 60 + 5, "12 min ago", "há 12 min"), (3 * 3600, "3 h ago", "há 3 h"),
    (-2 * 3600 + 1, "in 2 h", "em 2 h"), (-59 * 60, "in 59 min", "em 59 min"),
    (5 * 86400, "5 d ago", "há 5 d"),
    (59.6, "1 min ago", "há 1 min"), (3599.7, "1 h ago", "há 1 h"),
])
def test_relative_times_in_both_languages(app, delta, en, pt):
    now = 1_800_000_000.0
    with app.test_request_context("/"):
        assert page_text.ago(now - delta, now) == en
    with app.test_request_context("/", headers={"Accept-Language": "pt-BR"}):
        assert page_text.ago(now - delta, now) == pt


def test_a_time_is_a_time_element_in_utc_for_the_script_to_localize(app):
    with app.test_request_context("/"):
        html = str(page_text.moment(1_800_000_000, now=1_800_000_720))
        assert html == ('<time datetime="2027-01-15T08:00:00Z" data-t="1800000000" '
                        'title="2027-01-15T08:00:00Z">2027-01-15 08:00:00 UTC · 12 min ago</time>')
        assert "muted" in str(page_text.moment(None))


def test_every_text_of_the_console_pages_has_its_portuguese():
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    texts = {found for path in sorted(CONSOLE.glob("*.html"))
             for _line, _fn, msg in env.extract_translations(path.read_text())
             # a value shown as a word (`_(i.state)`) is no literal: WORDS covers those
             for found in ([msg] if isinstance(msg, str) else (msg or [None])[:1])
             if found is not None}
    assert len(texts) > 80  # the extraction sees the templates
    assert not sorted(t for t in texts if t not in page_text.PT_BR)
    assert not [w for w in page_text.WORDS if w not in page_text.PT_BR]


def test_the_pages_speak_portuguese_with_placeholders_filled(app):
    @app.get("/")
    def index():
        return app.jinja_env.from_string(
            '<html lang="{{ page_language() }}">{{ _("Open incidents (%(n)s)", n=3) }} '
            '{{ _("firing") }}</html>').render()

    client = app.test_client()
    assert client.get("/", headers={"Accept-Language": "pt-BR"}).text == \
        '<html lang="pt-BR">Incidentes abertos (3) em alerta</html>'
    assert client.get("/").text == '<html lang="en">Open incidents (3) firing</html>'
