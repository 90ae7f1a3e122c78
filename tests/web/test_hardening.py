"""Hardening of the review app (issue 21): sign-in limits that hold under parallel requests,
forwarded addresses believed only from the proxies the config names, the client's address in
``access.denied`` events, bad values refused with a 4xx (never a server error that also
breaks the connection), and an oversized chunked body refused with 413."""

from __future__ import annotations

import html
import http.client
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.web.helpers import PASSWORD, Client, Lab, item_ids, series_of

WRONG = "wrong name or password"
LOCKED = "too many failed logins: try again in 900 s"  # the clock is held still
BIG = 2**63  # one above the largest id a database holds
TOO_BIG = "Input should be less than or equal to 9223372036854775807"


@pytest.fixture
def still_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The accounts' clock stands still, so a lockout's wait is exactly the window."""
    from safeguard.accounts import store

    now = store._now()
    monkeypatch.setattr(store, "_now", lambda: now)


def accounts_events(lab: Lab, action: str) -> list[tuple[str, dict[str, Any]]]:
    """(object, details) of the accounts' audit events of one action, oldest first."""
    from safeguard.accounts.store import Accounts

    with Accounts(lab.settings).engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT object, details FROM audit_events WHERE action = ? "
                                    "ORDER BY seq", (action,)).all()
    return [(obj, json.loads(details)) for obj, details in rows]


def case_events(lab: Lab, action: str, case: str = "k") -> list[tuple[str, str, dict[str, Any]]]:
    """(actor, object, details) of a case's audit events of one action, oldest first."""
    from safeguard.store.cases import open_case

    with open_case(lab.settings, case).engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT actor, object, details FROM audit_events "
                                    "WHERE action = ? ORDER BY seq", (action,)).all()
    return [(actor, obj, json.loads(details)) for actor, obj, details in rows]


def sign_in(http: TestClient, name: str, password: str = PASSWORD,
            **headers: str) -> tuple[int, str]:
    """Sign in through the API: (status, the error or the name signed in)."""
    response = http.post("/api/v1/session", json={"name": name, "password": password},
                         headers={k.replace("_", "-"): v for k, v in headers.items()})
    body = response.json()
    return response.status_code, body.get("error") or body["name"]


def page_message(text: str) -> str:
    found = re.search(r'id="error-message">([^<]*)<', text)
    assert found, text[:300]
    return html.unescape(found.group(1))


# --- 2. sign-in limits under parallel requests --------------------------------------------------

def test_parallel_wrong_passwords_are_checked_no_more_than_the_limit(
        lab: Lab, monkeypatch: pytest.MonkeyPatch, still_clock: None) -> None:
    """Ten wrong passwords at once: five are checked (the fifth starts the lockout), five are
    refused unchecked. Each check waits until every attempt is either checked or refused, so
    all ten are in flight together: no attempt's failure is recorded before another's
    lockout check."""
    from safeguard.accounts import store
    from safeguard.errors import LoginRefused

    accounts = store.Accounts(lab.settings)
    accounts.add_user("racer", "reviewer", PASSWORD)
    attempts = 10
    real_verify = store._verify
    settled = threading.Condition()
    counts = {"checked": 0, "refused unchecked": 0}
    here = threading.local()

    def verify(password_hash: str, password: str) -> bool:
        with settled:
            here.checked = True
            counts["checked"] += 1
            settled.notify_all()
            settled.wait_for(lambda: sum(counts.values()) == attempts, timeout=60)
        return real_verify(password_hash, password)

    def attempt(_: int) -> str:
        here.checked = False
        try:
            accounts.login("racer", "not the password!", "192.0.2.21")
        except LoginRefused as exc:
            if not here.checked:
                with settled:
                    counts["refused unchecked"] += 1
                    settled.notify_all()
            return str(exc)
        return "signed in"

    monkeypatch.setattr(store, "_verify", verify)
    with ThreadPoolExecutor(attempts) as pool:
        answers = list(pool.map(attempt, range(attempts)))
    assert counts == {"checked": 5, "refused unchecked": 5}
    assert Counter(answers) == {WRONG: 4, LOCKED: 6}
    assert [obj for obj, _ in accounts_events(lab, "user.login_failed")].count("racer") == 5
    assert accounts_events(lab, "user.locked_out")[-1] == ("racer", {
        "client": "192.0.2.21", "seconds": 900,
        "until": store._iso(store._now() + store.timedelta(seconds=900))})
    assert [obj for obj, _ in accounts_events(lab, "user.locked_out")].count("racer") == 1
    with pytest.raises(LoginRefused, match=r"^too many failed logins: try again in 900 s$"):
        accounts.login("racer", PASSWORD, "192.0.2.22")  # the name is locked, too
    assert counts["checked"] == 5


def test_parallel_sign_ins_through_the_app_are_refused_beyond_the_limit(
        lab: Lab, monkeypatch: pytest.MonkeyPatch, still_clock: None) -> None:
    """The same through the API, from one address with several names: at most five
    passwords are checked, every answer is a 401 with one of the two documented messages."""
    from safeguard.accounts import store

    real_verify = store._verify
    checked = []

    def verify(password_hash: str, password: str) -> bool:
        checked.append(1)
        return real_verify(password_hash, password)

    monkeypatch.setattr(store, "_verify", verify)
    http = TestClient(lab.app, client=("192.0.2.31", 50000))
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: sign_in(http, f"ghost{i}", "guess guess guess"),
                                range(10)))
    assert len(checked) == 5
    assert Counter(status for status, _ in answers) == {401: 10}
    assert Counter(message for _, message in answers) == {WRONG: 4, LOCKED: 6}


# --- 3. forwarded addresses, from trusted proxies only ------------------------------------------

def test_serve_ignores_forwarded_for_from_a_local_client(
        lab: Lab, monkeypatch: pytest.MonkeyPatch, still_clock: None) -> None:
    """``safeguard serve`` as it runs the app (uvicorn's configuration, its middleware
    included): a local process naming another address in X-Forwarded-For for each attempt
    still counts as itself, is locked out, and is audited as itself."""
    import uvicorn

    from safeguard.cli import main

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, kw=kw))
    assert main(["--home", str(lab.home), "serve"]) == 0
    config = uvicorn.Config(served["app"], **served["kw"])
    config.load()
    http = TestClient(config.loaded_app, client=("127.0.0.1", 50000))
    for i in range(5):  # the fifth failure starts the lockout
        assert sign_in(http, f"spoof{i}", "guess guess guess",
                       X_Forwarded_For=f"198.51.100.{i + 1}") == (401, WRONG if i < 4 else LOCKED)
    assert sign_in(http, "rev1", X_Forwarded_For="198.51.100.99") == (401, LOCKED)
    failed = [d["client"] for _, d in accounts_events(lab, "user.login_failed")]
    assert failed[-5:] == ["127.0.0.1"] * 5
    assert not any("198.51.100." in d["client"]
                   for _, d in accounts_events(lab, "user.login_failed"))


def test_forwarded_for_names_the_client_only_from_a_trusted_proxy(
        lab: Lab, still_clock: None) -> None:
    from safeguard.web.app import create_app

    review = replace(lab.settings.review, trusted_proxies=("192.0.2.1", "192.0.2.128/25"))
    app = create_app(replace(lab.settings, review=review))
    proxy = TestClient(app, client=("192.0.2.1", 40000))
    for i in range(5):
        assert sign_in(proxy, f"far{i}", "guess guess guess",
                       X_Forwarded_For="203.0.113.7") == (401, WRONG if i < 4 else LOCKED)
    failed = [d["client"] for _, d in accounts_events(lab, "user.login_failed")]
    assert failed[-5:] == ["203.0.113.7"] * 5
    # the client is locked out, however it is forwarded: read from the right, the first
    # address that is not a trusted proxy (what a client put in the header itself is left)
    assert sign_in(proxy, "rev2", X_Forwarded_For="203.0.113.7") == (401, LOCKED)
    assert sign_in(proxy, "rev2", X_Forwarded_For="203.0.113.7, 192.0.2.200") == (401, LOCKED)
    assert sign_in(proxy, "rev2", X_Forwarded_For="198.51.100.5, 203.0.113.7") == (401, LOCKED)
    # ... the proxy itself and its other clients are not
    assert sign_in(proxy, "rev2", X_Forwarded_For="203.0.113.8") == (200, "rev2")
    assert sign_in(proxy, "rev2") == (200, "rev2")
    # from a peer that is not a trusted proxy, the header is ignored
    other = TestClient(app, client=("198.51.100.77", 40000))
    assert sign_in(other, "far9", "guess guess guess",
                   X_Forwarded_For="203.0.113.9") == (401, WRONG)
    assert accounts_events(lab, "user.login_failed")[-1][1]["client"] == "198.51.100.77"
    # X-Forwarded-Proto too: a TLS proxy's client gets a Secure cookie, nobody else does
    secure = proxy.post("/api/v1/session", json={"name": "rev2", "password": PASSWORD},
                        headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in secure.headers["set-cookie"]
    plain = other.post("/api/v1/session", json={"name": "rev2", "password": PASSWORD},
                       headers={"X-Forwarded-Proto": "https"})
    assert plain.status_code == 200
    assert "Secure" not in plain.headers["set-cookie"]


def test_trusted_proxies_setting(tmp_path: Path) -> None:
    from safeguard.config import load_settings
    from safeguard.errors import SafeguardError

    assert load_settings(tmp_path).review.trusted_proxies == ()
    (tmp_path / "config.toml").write_text(
        '[review]\ntrusted_proxies = ["127.0.0.1", "10.1.0.0/16", "::1"]\n')
    assert load_settings(tmp_path).review.trusted_proxies == ("127.0.0.1", "10.1.0.0/16",
                                                              "::1")
    (tmp_path / "config.toml").write_text('[review]\ntrusted_proxies = ["proxy.lab"]\n')
    with pytest.raises(SafeguardError) as refused:
        load_settings(tmp_path)
    assert str(refused.value) == ("[review] trusted_proxies: 'proxy.lab' is not an IP address "
                                  "or network")


# --- 4. access.denied carries the client's address ----------------------------------------------

def test_access_denied_events_carry_the_client_address(lab: Lab) -> None:
    from safeguard.web.app import create_app

    outsider = Client(TestClient(lab.app, follow_redirects=False,
                                 client=("198.51.100.41", 50000)))
    assert outsider.login("outsider").status_code == 303
    assert outsider.get("/cases/k/queue").status_code == 403
    assert outsider.get("/api/v1/cases/k/overview").status_code == 403
    denied = case_events(lab, "access.denied")
    assert denied[-2:] == [
        ("outsider", "/cases/k/queue",
         {"method": "GET", "role": "reviewer", "client": "198.51.100.41"}),
        ("outsider", "/api/v1/cases/k/overview",
         {"method": "GET", "role": "reviewer", "client": "198.51.100.41"})]
    # a reviewer on the case asking for its report
    reviewer = Client(TestClient(lab.app, follow_redirects=False,
                                 client=("198.51.100.42", 50000)))
    assert reviewer.login("rev1").status_code == 303
    assert reviewer.get("/cases/k/report").status_code == 403
    assert case_events(lab, "access.denied")[-1] == (
        "rev1", "/cases/k/report",
        {"method": "GET", "role": "reviewer", "what": "report", "client": "198.51.100.42"})
    # through a trusted proxy: the address it forwards
    review = replace(lab.settings.review, trusted_proxies=("192.0.2.1",))
    app = create_app(replace(lab.settings, review=review))
    proxied = Client(TestClient(app, follow_redirects=False, client=("192.0.2.1", 50000),
                                headers={"X-Forwarded-For": "203.0.113.50"}))
    assert proxied.login("outsider").status_code == 303
    assert proxied.get("/cases/k/queue").status_code == 403
    assert case_events(lab, "access.denied")[-1][2]["client"] == "203.0.113.50"


# --- 7. bad values: 4xx with one line, and the next request works -------------------------------

FILTER_ERRORS = {
    "category": "queue filter category 'bogus' is not a code of scheme 'uk' (known: A, B, C, "
                "uncategorised, not-indecent)",
    "match": "queue filter match must be one of new, known, not 'bogus'",
    "type": "queue filter type must be one of picture, video, not 'bogus'",
    "verdict": "queue filter verdict must be one of ai_confirmed, ai_indicated, ai_modified, "
               "camera_original, unknown, not 'bogus'",
}


def api_cases(lab: Lab) -> list[tuple[str, str, dict[str, Any], int, str]]:
    video = item_ids(lab)["clip.mp4"]
    nan_start = '{"category": "C", "start": NaN, "end": 1}'
    nan_end = '{"category": "C", "start": 0, "end": NaN}'
    as_json = {"content-type": "application/json"}
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("GET", f"/api/v1/cases/k/queue?{name}=bogus", {}, 400, message)
        for name, message in FILTER_ERRORS.items()]
    cases += [
        ("GET", f"/api/v1/cases/k/queue?offset={BIG}", {}, 422,
         f"invalid offset (query): {TOO_BIG}"),
        ("GET", f"/api/v1/cases/k/queue?evidence={BIG}", {}, 422,
         f"invalid evidence (query): {TOO_BIG}"),
        ("GET", f"/api/v1/cases/k/disputes?offset={BIG}", {}, 422,
         f"invalid offset (query): {TOO_BIG}"),
        ("GET", f"/api/v1/cases/k/series/{BIG}", {}, 422,
         f"invalid series_id (path): {TOO_BIG}"),
        ("GET", f"/api/v1/cases/k/items/{BIG}", {}, 422, f"invalid item_id (path): {TOO_BIG}"),
        ("GET", f"/api/v1/cases/k/items/{BIG}/thumbnail", {}, 422,
         f"invalid item_id (path): {TOO_BIG}"),
        ("GET", f"/api/v1/cases/k/items/{BIG}/original", {}, 422,
         f"invalid item_id (path): {TOO_BIG}"),
        ("POST", f"/api/v1/cases/k/items/{BIG}/reveal", {}, 422,
         f"invalid item_id (path): {TOO_BIG}"),
        ("POST", f"/api/v1/cases/k/segments/{BIG}/undo", {}, 422,
         f"invalid mark_id (path): {TOO_BIG}"),
        ("POST", f"/api/v1/cases/k/items/{BIG}/segments",
         {"json": {"category": "C", "start": 0, "end": 1}}, 422,
         f"invalid item_id (path): {TOO_BIG}"),
        ("POST", "/api/v1/cases/k/grades", {"json": {"category": "C", "items": [BIG]}}, 422,
         f"invalid items.0 (body): {TOO_BIG}"),
        ("POST", "/api/v1/cases/k/grades", {"json": {"category": "C", "series": BIG}}, 422,
         f"invalid series (body): {TOO_BIG}"),
        ("POST", "/api/v1/cases/k/resolutions", {"json": {"category": "C", "items": [BIG]}},
         422, f"invalid items.0 (body): {TOO_BIG}"),
        ("POST", f"/api/v1/cases/k/items/{video}/segments",
         {"content": nan_start, "headers": as_json}, 422,
         "invalid start (body): Input should be a finite number"),
        ("POST", f"/api/v1/cases/k/items/{video}/segments",
         {"content": nan_end, "headers": as_json}, 422,
         "invalid end (body): Input should be a finite number"),
    ]
    return cases


def test_bad_values_in_the_api_are_refused_with_one_line(lab: Lab) -> None:
    client = lab.client("exa")
    for method, url, kw, status, message in api_cases(lab):
        headers = {"X-CSRF-Token": client.csrf, **kw.pop("headers", {})}
        response = client.http.request(method, url, headers=headers, **kw)
        assert (response.status_code, response.json()["error"]) == (status, message), url
        assert client.get("/api/v1/me").status_code == 200, url  # the next request works


def test_bad_values_in_the_pages_are_refused_with_one_line(lab: Lab) -> None:
    client = lab.client("exa")
    video = str(item_ids(lab)["clip.mp4"])
    gets = [(f"/cases/k/queue?{name}=bogus", 400, message)
            for name, message in FILTER_ERRORS.items()]
    gets += [(f"/cases/k/queue?offset={BIG}", 422, f"invalid offset (query): {TOO_BIG}"),
             (f"/cases/k/series/{BIG}", 422, f"invalid series_id (path): {TOO_BIG}"),
             (f"/cases/k/items/{BIG}/thumbnail", 422, f"invalid item_id (path): {TOO_BIG}"),
             (f"/cases/k/items/{BIG}/original", 422, f"invalid item_id (path): {TOO_BIG}"),
             (f"/cases/k/items/{BIG}/revealed?r=1.x", 422,
              f"invalid item_id (path): {TOO_BIG}")]
    posts = [(f"/cases/k/items/{BIG}/reveal", {}, 422, f"invalid item_id (path): {TOO_BIG}"),
             ("/cases/k/grade", {"category": "C", "items": str(BIG)}, 422,
              f"invalid items.0 (body): {TOO_BIG}"),
             ("/cases/k/grade", {"category": "C", "series": str(BIG)}, 422,
              f"invalid series (body): {TOO_BIG}"),
             ("/cases/k/resolve", {"category": "C", "item": str(BIG)}, 422,
              f"invalid item (body): {TOO_BIG}"),
             ("/cases/k/segment-undo", {"mark": str(BIG)}, 422,
              f"invalid mark (body): {TOO_BIG}"),
             ("/cases/k/segment", {"item": str(BIG), "start": "0", "end": "1",
                                   "category": "C"}, 422, f"invalid item (body): {TOO_BIG}"),
             ("/cases/k/segment", {"item": video, "start": "nan", "end": "1",
                                   "category": "C"}, 400,
              "not a time in the video: 'nan' (give seconds, m:ss or h:mm:ss)")]
    for url, status, message in gets:
        response = client.get(url)
        assert (response.status_code, page_message(response.text)) == (status, message), url
        assert client.get("/").status_code == 200, url
    for url, data, status, message in posts:
        response = client.post(url, data=data)
        assert (response.status_code, page_message(response.text)) == (status, message), url
        assert client.get("/").status_code == 200, url


@pytest.fixture(scope="module")
def server(lab: Lab) -> Iterator[tuple[str, int]]:
    """The app served by uvicorn on loopback, for requests on one kept-alive connection."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(lab.app, host="127.0.0.1", port=port,  # type: ignore[arg-type]
                            log_level="warning", proxy_headers=False)
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not served.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    yield "127.0.0.1", port
    served.should_exit = True
    thread.join(10)


def test_a_refused_value_leaves_the_connection_usable(lab: Lab,
                                                      server: tuple[str, int]) -> None:
    cookie = lab.client("exa").http.cookies["sg_session"]
    connection = http.client.HTTPConnection(*server)
    headers = {"Cookie": f"sg_session={cookie}"}
    try:
        for url in ("/api/v1/cases/k/queue?category=bogus", f"/api/v1/cases/k/items/{BIG}",
                    f"/cases/k/series/{BIG}", "/cases/k/queue?verdict=bogus"):
            connection.request("GET", url, headers=headers)
            refused = connection.getresponse()
            refused.read()
            assert refused.status in (400, 422), url
            connection.request("GET", "/api/v1/me", headers=headers)  # the same connection
            answer = connection.getresponse()
            assert (answer.status, json.loads(answer.read())["name"]) == (200, "exa"), url
    finally:
        connection.close()


# --- 10. an oversized chunked body is refused with 413 ------------------------------------------

def chunks(size: int, first: bytes = b"") -> Iterator[bytes]:
    """A body sent chunked (no Content-Length), ``size`` bytes in 8 KiB pieces."""
    yield first
    sent = len(first)
    while sent < size:
        piece = b"x" * min(8192, size - sent)
        sent += len(piece)
        yield piece


def test_an_oversized_chunked_body_is_refused_with_413(lab: Lab) -> None:
    limit = lab.settings.review.max_body_bytes
    client = lab.client("exa")
    series = series_of(lab, "a.jpg")
    api = client.http.post("/api/v1/cases/k/grades", content=chunks(limit + 1, b'{"note": "'),
                           headers={"X-CSRF-Token": client.csrf,
                                    "Content-Type": "application/json"})
    assert "content-length" not in api.request.headers
    assert api.request.headers["transfer-encoding"] == "chunked"
    assert (api.status_code, api.json()) == (413, {"error": f"request body larger than "
                                                            f"{limit} bytes"})
    assert client.get("/api/v1/me").status_code == 200
    form = client.http.post("/cases/k/grade", content=chunks(2 * limit, b"note="),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (form.status_code, form.text) == (413, f"request body larger than {limit} bytes")
    assert client.get("/").status_code == 200
    signing_in = TestClient(lab.app).post("/api/v1/session", content=chunks(limit + 1),
                                          headers={"Content-Type": "application/json"})
    assert signing_in.status_code == 413
    # a chunked body within the limit is taken
    within = client.http.post(
        "/api/v1/cases/k/grades", headers={"X-CSRF-Token": client.csrf,
                                           "Content-Type": "application/json"},
        content=iter([json.dumps({"category": "C", "series": series}).encode()]))
    assert "content-length" not in within.request.headers
    assert within.status_code == 200
