import pytest

from gateway.domain import approvals
from gateway.domain.approvals import ApprovalRefused, Claims

SECRET = "s3cret"
CLAIMS = Claims("a1", "p1", "inc-1", expires_at=2000.0)


def test_a_genuine_token_gives_back_its_claims():
    token = approvals.sign(SECRET, CLAIMS)
    assert approvals.verify(SECRET, token, now=1999.0, incident_id="inc-1") == CLAIMS


@pytest.mark.parametrize("mutate, now, incident, code", [
    (lambda t: t, 2000.0, None, "expired"),
    (lambda t: t, 100.0, "inc-2", "wrong_incident"),
    (lambda t: approvals.sign("other-key", CLAIMS), 100.0, None, "forged"),
    (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), 100.0, None, "forged"),
    (lambda t: approvals.sign(SECRET, CLAIMS).split(".")[0][:-1] + "x." + t.split(".")[1],
     100.0, None, "forged"),
    (lambda t: "not-a-token", 100.0, None, "malformed"),
    (lambda t: t + ".x", 100.0, None, "malformed"),
])
def test_bad_tokens_are_refused_with_a_clear_reason(mutate, now, incident, code):
    token = mutate(approvals.sign(SECRET, CLAIMS))
    with pytest.raises(ApprovalRefused) as err:
        approvals.verify(SECRET, token, now=now, incident_id=incident)
    assert err.value.code == code and len(err.value.message) > 20


def test_csrf_token_is_bound_to_the_approval_and_the_cookie():
    token = approvals.sign(SECRET, CLAIMS)
    csrf = approvals.csrf_token(SECRET, token, "nonce1")
    approvals.check_csrf(SECRET, token, csrf, "nonce1")
    for form, cookie, tok in [(csrf, "nonce2", token), (None, "nonce1", token),
                              (csrf, "nonce1", approvals.sign(SECRET, Claims("a2", "p", "i", 1))),
                              ("nonce1.forged", "nonce1", token)]:
        with pytest.raises(ApprovalRefused, match="CSRF"):
            approvals.check_csrf(SECRET, tok, form, cookie)
