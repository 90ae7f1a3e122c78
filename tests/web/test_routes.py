"""Every route of the app, enumerated: none answers without a session, none of a case's routes
answers a user who is not on the case (403, audited), and no write is taken without the CSRF
token. A route added later is covered by these tests without being named in them."""

from __future__ import annotations

import json

import pytest
from starlette.routing import Mount, Route

from tests.web.helpers import Lab, item_ids, series_of

#: routes anyone may reach: signing in, the static files, the API's description
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/api/v1/session"),
          ("GET", "/api/v1/openapi.json"), ("HEAD", "/api/v1/openapi.json")}


def routes(lab: Lab) -> list[tuple[str, str]]:
    """(method, path) of every route, routers included (FastAPI keeps included routers as
    branches of its routing tree: walked here)."""
    def walk(entries: list[object], prefix: str) -> list[tuple[str, str]]:
        found = []
        for route in entries:
            if isinstance(route, Mount):
                assert route.path == "/static"
                continue
            if hasattr(route, "original_router"):  # an included router
                found += walk(route.original_router.routes,  # type: ignore[attr-defined]
                              prefix + route.include_context.prefix)  # type: ignore[attr-defined]
                continue
            assert isinstance(route, Route), route
            found += [(m, prefix + route.path) for m in sorted(route.methods or ())
                      if m != "HEAD"]
        return found

    return walk(lab.app.routes, "")  # type: ignore[attr-defined]


def concrete(lab: Lab, path: str, case: str = "k") -> str:
    ids = item_ids(lab, case)
    return (path.replace("{case}", case)
            .replace("{item_id}", str(ids.get("a.jpg") or min(ids.values())))
            .replace("{series_id}", str(series_of(lab, "a.jpg") if case == "k"
                                        else min(ids.values())))
            .replace("{batch}", "0" * 32).replace("{name}", "rev1"))


def call(client: object, method: str, url: str, csrf: bool = True) -> object:
    body = {"category": "C", "items": [], "blur": 2, "name": "x", "password": "y"}
    return client.api(method, url, csrf=csrf,  # type: ignore[attr-defined]
                      **({"json": body} if method in ("POST", "PUT") else {}))


def test_the_app_has_the_routes_the_tests_expect(lab: Lab) -> None:
    found = routes(lab)
    assert len(found) >= 30
    assert ("GET", "/cases/{case}/items/{item_id}/thumbnail") in found
    assert ("POST", "/api/v1/cases/{case}/grades") in found


def test_no_route_answers_without_a_session(lab: Lab) -> None:
    client = lab.client()
    for method, path in routes(lab):
        if (method, path) in PUBLIC:
            continue
        response = call(client, method, concrete(lab, path))
        expected = 401 if path.startswith("/api/") else 303
        assert response.status_code == expected, (method, path, response.status_code)
        if expected == 303:
            assert response.headers["location"] == "/login"


def test_no_case_route_answers_a_user_not_on_the_case(lab: Lab) -> None:
    client = lab.client("outsider")
    case_routes = [(m, p) for m, p in routes(lab) if "{case}" in p]
    assert len(case_routes) >= 20
    for method, path in case_routes:
        response = call(client, method, concrete(lab, path))
        assert response.status_code == 403, (method, path, response.status_code)
    # ... and each refusal is in the case's audit log, with who and what
    from safeguard.store.cases import open_case

    with open_case(lab.settings, "k").engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT actor, object, details FROM audit_events WHERE action = 'access.denied'"
        ).all()
    assert {(actor, obj) for actor, obj, _ in rows} >= {
        ("outsider", concrete(lab, p)) for _, p in case_routes}
    assert json.loads(rows[0][2])["role"] == "reviewer"


def test_a_member_reaches_every_case_route_of_their_own_case(lab: Lab) -> None:
    """The same routes answer a member (not 401/403): the refusals above are about access."""
    client = lab.client("exa")
    for method, path in routes(lab):
        if "{case}" not in path or method != "GET":
            continue
        response = call(client, method, concrete(lab, path))
        assert response.status_code not in (401, 403), (method, path, response.status_code)


@pytest.mark.parametrize("csrf", ["missing", "wrong"])
def test_no_write_is_taken_without_the_csrf_token(lab: Lab, csrf: str) -> None:
    client = lab.client("exa")
    if csrf == "wrong":
        client.csrf = "x" * 43
    writes = [(m, p) for m, p in routes(lab) if m != "GET" and (m, p) not in PUBLIC]
    assert len(writes) >= 10
    for method, path in writes:
        response = call(client, method, concrete(lab, path), csrf=csrf == "wrong")
        assert response.status_code == 403, (method, path, response.status_code)
        assert "CSRF" in response.text


def test_path_like_ids_never_reach_a_file(lab: Lab) -> None:
    client = lab.client("exa")
    for url in ("/cases/k/items/..%2F..%2Fetc%2Fpasswd/thumbnail",
                "/cases/k/items/1;rm/thumbnail", "/cases/..%2Fother/queue",
                "/api/v1/cases/k/items/-1", "/api/v1/cases/k/items/99999999"):
        response = client.get(url)
        assert response.status_code in (403, 404, 422), (url, response.status_code)
        assert "root:" not in response.text
