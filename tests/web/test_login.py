"""Signing in: generic refusals, rate limiting, cookie flags, expired sessions, login CSRF."""

from __future__ import annotations

import re

from tests.web.helpers import PASSWORD, Lab


def test_sign_in_sets_a_strict_http_only_cookie(lab: Lab) -> None:
    client = lab.client()
    response = client.login("rev1")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("sg_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    assert client.get("/").status_code == 200


def test_cookie_is_secure_over_tls(lab: Lab) -> None:
    response = lab.client(https=True).login("rev2")
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


def test_wrong_password_and_unknown_user_look_the_same(lab: Lab) -> None:
    wrong = lab.client().login("exa", "not the password!")
    unknown = lab.client().login("nobody-at-all", "not the password!")
    assert wrong.status_code == unknown.status_code == 401
    texts = [re.search(r'id="login-error">([^<]+)<', r.text).group(1) for r in (wrong, unknown)]
    assert texts == ["wrong name or password"] * 2
    assert "set-cookie" not in wrong.headers or "sg_session" not in wrong.headers["set-cookie"]


def test_failed_logins_are_rate_limited(lab: Lab) -> None:
    client = lab.client()
    for _ in range(5):
        assert client.login("aud", "guess guess guess").status_code == 401
    locked = client.login("aud", PASSWORD)  # the right password, too late
    assert locked.status_code == 401
    message = re.search(r'id="login-error">([^<]+)<', locked.text).group(1)
    assert message.startswith("too many failed logins: try again in ")
    # the address is locked too, for every name; another address may still sign in as rev1
    assert client.login("rev1").status_code == 401
    assert lab.client().login("rev1").status_code == 303


def test_login_form_needs_its_csrf_token(lab: Lab) -> None:
    client = lab.client()
    client.get("/login")
    response = client.http.post("/login", data={"name": "rev1", "password": PASSWORD,
                                                "csrf": "forged"})
    assert response.status_code == 403
    assert "sg_session" not in response.headers.get("set-cookie", "")


def test_expired_session_is_sent_to_sign_in(lab: Lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from safeguard.accounts import store

    client = lab.client("rev1")
    assert client.get("/").status_code == 200
    now = store._now()
    monkeypatch.setattr(store, "_now", lambda: now + timedelta(hours=13))
    assert client.get("/").status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def test_sign_out_ends_the_session(lab: Lab) -> None:
    client = lab.client("rev2")
    assert client.post("/logout", data={}).status_code == 303
    assert client.get("/").status_code == 303


def test_security_headers(lab: Lab) -> None:
    response = lab.client("rev1").get("/")
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
