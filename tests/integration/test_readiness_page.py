"""`/readiness` before anything was computed, heard or drilled (a fresh gateway): a page that
says so, in both languages, behind the login (Flask test client, real Redis)."""

from gateway.app import create_app
from gateway.config import settings_from_dict
from tests.support.auth import auth_section, bearer


def test_a_fresh_gateway_says_nothing_was_computed_yet(redis_url, key_prefix):
    settings = settings_from_dict({"redis_url": redis_url, "key_prefix": key_prefix,
                                   "auth": auth_section()}, env={})
    client = create_app(settings).test_client()
    assert client.get("/readiness").status_code in (302, 303, 401)  # the login gate
    page = client.get("/readiness", headers=bearer("viewer"))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="not-yet"' in text and "`oneha readiness` computes it now" in text
    assert "No front-end is configured" in text and "No drill yet" in text
    pt = client.get("/readiness", headers={**bearer("viewer"), "Accept-Language": "pt-BR"})
    assert "A prontidão ainda não foi calculada" in pt.get_data(as_text=True)
