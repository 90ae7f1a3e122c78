"""The server-rendered pages (Jinja2 + htmx). Each case route reaches its case only through
``case_access``; each write checks the session's CSRF token (``checked_viewer``)."""

from __future__ import annotations

import html
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import Field

from safeguard.errors import Forbidden, LoginRefused, ReviewError
from safeguard.provenance.verdict import VERDICTS
from safeguard.review.segments import parse_time
from safeguard.triage.queue import next_series
from safeguard.web import lab, service
from safeguard.web.deps import (
    MAX_ID,
    CaseContext,
    accounts_of,
    case_access,
    settings_of,
    templates_of,
    visible_cases,
)
from safeguard.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Viewer,
    checked_viewer,
    client_address,
    secure_cookie,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)
Ctx = Annotated[CaseContext, Depends(case_access)]
Who = Annotated[Viewer, Depends(checked_viewer)]
#: a row id in the path or a form: within what a database holds
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
FormId = Annotated[int, Form(ge=1, le=MAX_ID)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
BLUR_LABELS = [(3, "strong (default)"), (2, "medium"), (1, "light"), (0, "none")]


def _page(request: Request, template: str, context: dict[str, Any],
          status: int = 200) -> HTMLResponse:
    return templates_of(request).TemplateResponse(request, template, context, status_code=status)


def _jpeg(data: bytes) -> Response:
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


# --- signing in ------------------------------------------------------------------------------

@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = _page(request, "login.html", {"login_csrf": token, "viewer": None})
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=secure_cookie(request), path="/login")
    return response


@router.post("/login")
def login(request: Request, name: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=1024)],
          csrf: Annotated[str, Form(max_length=128)]) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, csrf):
        raise Forbidden("missing or wrong CSRF token")
    try:
        session = accounts_of(request).login(name, password, client_address(request))
    except LoginRefused as exc:
        token = secrets.token_urlsafe(32)
        response = _page(request, "login.html",
                         {"login_csrf": token, "viewer": None, "error": str(exc)}, 401)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=secure_cookie(request), path="/login")
        return response
    signed_in = RedirectResponse("/", status_code=303)
    set_session_cookie(signed_in, request, session.token)
    signed_in.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return signed_in


@router.post("/logout")
def logout(request: Request, who: Who) -> Response:
    accounts_of(request).logout(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- the viewer's own pages ------------------------------------------------------------------

@router.get("/")
def cases(request: Request, who: Who) -> HTMLResponse:
    return _page(request, "cases.html", {"viewer": who, "cases": visible_cases(request, who)})


@router.get("/backlog")
def backlog(request: Request, who: Who) -> HTMLResponse:
    rows = lab.backlog(settings_of(request), accounts_of(request), who)
    return _page(request, "backlog.html", {"viewer": who, "rows": rows})


@router.get("/me")
def me(request: Request, who: Who) -> HTMLResponse:
    exposure = accounts_of(request).exposure(who.name)
    return _page(request, "me.html", {"viewer": who, "exposure": exposure,
                                      "blur_levels": BLUR_LABELS})


@router.post("/me/settings")
def me_settings(request: Request, who: Who, blur: Annotated[int, Form(ge=0, le=3)],
                break_minutes: Annotated[int, Form(ge=5, le=240)]) -> Response:
    accounts = accounts_of(request)
    accounts.set_blur(who.name, blur)
    accounts.set_break(who.name, break_minutes)
    return RedirectResponse("/me", status_code=303)


@router.get("/admin/users")
def users(request: Request, who: Who) -> HTMLResponse:
    if not who.user.is_admin:
        raise Forbidden("only an admin can see every user's exposure")
    accounts = accounts_of(request)
    rows = []
    for user in accounts.users():
        exposure = accounts.exposure(user.name)
        rows.append({"name": user.name, "role": user.role, "disabled": user.disabled,
                     "cases": accounts.cases_of(user.name),
                     "reveals": sum(r["reveals"] for r in exposure),
                     "seconds": sum(r["seconds"] for r in exposure)})
    return _page(request, "users.html", {"viewer": who, "users": rows})


# --- a case ----------------------------------------------------------------------------------

@router.get("/cases/{case}")
def overview(request: Request, ctx: Ctx) -> HTMLResponse:
    return _page(request, "overview.html", {"viewer": ctx.viewer, **service.overview(ctx),
                                            "links": lab.case_links(ctx, lab.PER_KIND),
                                            "missing_message": lab.missing_message})


def _queue_filters(ctx: CaseContext, match: str | None, type: str | None, verdict: str | None,
                   category: str | None, evidence: str | None) -> tuple[Any, str]:
    """The queue's filters from a page's query, and the query string that repeats them."""
    filters = service.queue_filters(
        ctx, evidence=int(evidence) if evidence and evidence.isdigit() else None,
        type=type or None, category=category or None, verdict=verdict or None,
        match=match or None)
    query = urlencode({k: v for k, v in (("match", match), ("type", type),
                                         ("verdict", verdict), ("category", category),
                                         ("evidence", evidence)) if v})
    return filters, query


Match = Annotated[str | None, Query(max_length=16)]
Kind = Annotated[str | None, Query(max_length=16)]
Verdict = Annotated[str | None, Query(max_length=24)]
Category = Annotated[str | None, Query(max_length=64)]
EvidenceId = Annotated[str | None, Query(max_length=12)]
Show = Annotated[str | None, Query(max_length=8, pattern="^(all)?$")]


@router.get("/cases/{case}/queue")
def queue(request: Request, ctx: Ctx,
          offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0, match: Match = None,
          type: Kind = None, verdict: Verdict = None, category: Category = None,
          evidence: EvidenceId = None, show: Show = None) -> HTMLResponse:
    filters, query = _queue_filters(ctx, match, type, verdict, category, evidence)
    page = service.queue_page(ctx, filters, offset, 48)
    page["entries"], hidden = service.queue_states(ctx, page["entries"], show == "all")
    evidence_rows = service.evidence_list(ctx)
    return _page(request, "queue.html", {
        "viewer": ctx.viewer, "case": ctx.name, "filters": filters, "query": query,
        "show_all": show == "all", "hidden": hidden,
        "verdict_names": VERDICTS, "category_codes": service.scheme(ctx).codes(),
        "evidence": evidence_rows, **page})


@router.get("/cases/{case}/grid")
def grid(request: Request, ctx: Ctx,
         offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
         size: Annotated[int, Query()] = service.GRID_SIZE, match: Match = None,
         type: Kind = None, verdict: Verdict = None, category: Category = None,
         evidence: EvidenceId = None, show: Show = None) -> HTMLResponse:
    if size not in service.GRID_SIZES:
        raise ReviewError(f"grid size must be one of "
                          f"{', '.join(map(str, service.GRID_SIZES))}, not {size}")
    filters, query = _queue_filters(ctx, match, type, verdict, category, evidence)
    page = service.grid_page(ctx, filters, offset, size, show == "all")
    base = "&".join(q for q in (query, f"size={size}", "show=all" if show == "all" else "")
                    if q)
    return _page(request, "grid.html", {
        "viewer": ctx.viewer, "case": ctx.name, "query": query, "base": base, "size": size,
        "filter_pairs": [(k, v) for k, v in (("match", match), ("type", type),
                                             ("verdict", verdict), ("category", category),
                                             ("evidence", evidence)) if v],
        "sizes": service.GRID_SIZES, "show_all": show == "all", "keys": service.keys(ctx),
        "can_grade": ctx.can_grade, "can_reveal": ctx.can_grade, **page})


@router.get("/cases/{case}/series/{series_id}")
def series(request: Request, ctx: Ctx, series_id: PathId) -> HTMLResponse:
    view = service.series_view(ctx, series_id)
    seen = lab.series_links(ctx, [item["id"] for item in view["items"]])
    return _page(request, "series.html", {"viewer": ctx.viewer, "case": ctx.name,
                                          "keys": service.keys(ctx), "seen": seen,
                                          "can_grade": ctx.can_grade,
                                          "can_reveal": ctx.can_grade, **view})


@router.get("/cases/{case}/items/{item_id}/thumbnail")
def thumbnail(ctx: Ctx, item_id: PathId) -> Response:
    return _jpeg(service.thumbnail(ctx, item_id))


@router.post("/cases/{case}/items/{item_id}/reveal")
def reveal(request: Request, ctx: Ctx, item_id: PathId) -> HTMLResponse:
    token = service.reveal(ctx, item_id)
    return _page(request, "_revealed.html", {"case": ctx.name, "item_id": item_id,
                                             "reveal": token})


@router.get("/cases/{case}/items/{item_id}/revealed")
def revealed(ctx: Ctx, item_id: PathId, r: Annotated[str, Query(max_length=128)]) -> Response:
    return _jpeg(service.revealed(ctx, item_id, r))


@router.get("/cases/{case}/items/{item_id}/original")
def original(ctx: Ctx, item_id: PathId) -> Response:
    return service.original(ctx, item_id)


@router.post("/cases/{case}/grade")
def grade(request: Request, ctx: Ctx, category: Annotated[str, Form(max_length=64)],
          series: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
          items: Annotated[list[Id] | None, Form()] = None,
          flags: Annotated[list[str] | None, Form()] = None,
          note: Annotated[str | None, Form(max_length=4000)] = None) -> HTMLResponse:
    done = service.grade_items(ctx, items or [], series, category, flags or [], note)
    next_url = None
    if series is not None:
        following = next_series(ctx.case, ctx.settings, series)
        next_url = (f"/cases/{ctx.name}/series/{following}" if following
                    else f"/cases/{ctx.name}/queue")
    return _page(request, "_graded.html", {
        "case": ctx.name, **done, "consensus": list(done["consensus"].items()),
        "next_url": next_url})


@router.post("/cases/{case}/undo")
def undo(request: Request, ctx: Ctx, batch: Annotated[str, Form(max_length=64)]) -> HTMLResponse:
    return _page(request, "_undone.html", {"count": service.undo_batch(ctx, batch)})


@router.post("/cases/{case}/segment")
def segment(request: Request, ctx: Ctx, item: FormId,
            start: Annotated[str, Form(max_length=32)], end: Annotated[str, Form(max_length=32)],
            category: Annotated[str, Form(max_length=64)],
            note: Annotated[str | None, Form(max_length=4000)] = None) -> HTMLResponse:
    mark = service.mark_segment(ctx, item, parse_time(start), parse_time(end), category, note)
    return _page(request, "_segment.html", {"case": ctx.name, "mark": mark})


@router.post("/cases/{case}/segment-undo")
def segment_undo(request: Request, ctx: Ctx, mark: FormId) -> HTMLResponse:
    undone = service.undo_segment(ctx, mark)
    return HTMLResponse(f'<p class="undone" id="segment-undone-{mark}">'
                        f'Segment {mark} {"undone" if undone else "was already undone"}.</p>')


@router.get("/cases/{case}/report")
def report(ctx: Ctx, format: Annotated[str, Query(max_length=8)] = "pdf") -> Response:
    return service.report(ctx, format)


@router.get("/cases/{case}/disputes")
def disputes(request: Request, ctx: Ctx) -> HTMLResponse:
    return _page(request, "disputes.html", {"viewer": ctx.viewer, "case": ctx.name,
                                            "keys": service.keys(ctx),
                                            "disputes": service.dispute_list(ctx)})


@router.post("/cases/{case}/resolve")
def resolve(ctx: Ctx, item: FormId,
            category: Annotated[str, Form(max_length=64)]) -> HTMLResponse:
    batch = service.resolve_items(ctx, [item], category, None)
    return HTMLResponse(
        f'<p class="resolved" id="resolved-{item}">Resolved item {item} as '
        f'<strong>{html.escape(category)}</strong>. <button type="button" class="undo" '
        f'hx-post="/cases/{ctx.name}/undo" hx-vals=\'{{"batch": "{batch}"}}\' '
        f'hx-target="#grade-result">Undo</button></p>')
