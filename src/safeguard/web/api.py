"""The JSON API (``/api/v1``): the same actions as the pages, for scripts and other tools.
Signed in with the same session cookie (``POST /api/v1/session``); every write sends the
session's CSRF token in ``X-CSRF-Token``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from safeguard.errors import Forbidden, LoginRefused, NotAuthenticated
from safeguard.web import lab, service
from safeguard.web.deps import (
    MAX_ID,
    CaseContext,
    accounts_of,
    case_access,
    settings_of,
    visible_cases,
)
from safeguard.web.security import (
    SESSION_COOKIE,
    Viewer,
    checked_viewer,
    client_address,
    set_session_cookie,
)

router = APIRouter(prefix="/api/v1")
Ctx = Annotated[CaseContext, Depends(case_access)]
Who = Annotated[Viewer, Depends(checked_viewer)]
#: a row id in the path, a list's offset, an id in a body: within what a database holds
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Credentials(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class GradeRequest(BaseModel):
    category: str = Field(max_length=64)
    items: list[Id] = Field(default_factory=list, max_length=10_000)
    series: Id | None = None
    flags: list[str] = Field(default_factory=list, max_length=8)
    note: str | None = Field(default=None, max_length=4000)


class SegmentRequest(BaseModel):
    start: float = Field(ge=0, allow_inf_nan=False, description="seconds from the first frame")
    end: float = Field(gt=0, allow_inf_nan=False)
    category: str = Field(max_length=64)
    note: str | None = Field(default=None, max_length=4000)


class Resolution(BaseModel):
    items: list[Id] = Field(max_length=10_000)
    category: str = Field(max_length=64)
    note: str | None = Field(default=None, max_length=4000)


class MySettings(BaseModel):
    blur: int | None = Field(default=None, ge=0, le=3)
    break_minutes: int | None = Field(default=None, ge=5, le=240)


def _me(who: Viewer) -> dict[str, Any]:
    user = who.user
    return {"name": user.name, "role": user.role, "blur": user.blur,
            "break_minutes": user.break_minutes, "csrf": who.session.csrf}


@router.post("/session")
def sign_in(request: Request, credentials: Credentials) -> JSONResponse:
    """Sign in; the session cookie is set and the CSRF token returned. (No CSRF token is
    needed for this one: there is no session yet, and the cookie is SameSite=Strict.)"""
    try:
        session = accounts_of(request).login(credentials.name, credentials.password,
                                             client_address(request))
    except LoginRefused as exc:
        return JSONResponse({"error": str(exc)}, status_code=401)
    response = JSONResponse({"name": session.user.name, "role": session.user.role,
                             "csrf": session.csrf})
    set_session_cookie(response, request, session.token)
    return response


@router.delete("/session")
def sign_out(request: Request, who: Who) -> JSONResponse:
    accounts_of(request).logout(request.cookies.get(SESSION_COOKIE, ""))
    response = JSONResponse({"signed_out": who.name})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me")
def me(request: Request, who: Who) -> dict[str, Any]:
    return {**_me(who), "exposure": accounts_of(request).exposure(who.name)}


@router.put("/me/settings")
def my_settings(request: Request, who: Who, settings: MySettings) -> dict[str, Any]:
    accounts = accounts_of(request)
    if settings.blur is not None:
        accounts.set_blur(who.name, settings.blur)
    if settings.break_minutes is not None:
        accounts.set_break(who.name, settings.break_minutes)
    user = accounts.user(who.name)
    if user is None:  # removed while signed in
        raise NotAuthenticated()
    return {"blur": user.blur, "break_minutes": user.break_minutes}


@router.get("/users/{name}/exposure")
def exposure(request: Request, who: Who, name: str) -> list[dict[str, Any]]:
    if name != who.name and not who.user.is_admin:
        raise Forbidden("only an admin can see another user's exposure")
    return list(accounts_of(request).exposure(name))


@router.get("/cases")
def cases(request: Request, who: Who) -> list[str]:
    return visible_cases(request, who)


@router.get("/backlog")
def backlog(request: Request, who: Who) -> list[dict[str, Any]]:
    """Your cases ranked by harm score, highest first, each score with its lines."""
    return lab.backlog(settings_of(request), accounts_of(request), who)


@router.get("/cases/{case}/overview")
def overview(ctx: Ctx) -> dict[str, Any]:
    return service.overview(ctx)


@router.get("/cases/{case}/links")
def case_links(ctx: Ctx) -> dict[str, Any]:
    """The case's links to other cases, as you may see them (docs/links.md)."""
    return lab.case_links(ctx)


@router.get("/cases/{case}/queue")
def queue(ctx: Ctx, offset: Offset = 0,
          limit: Annotated[int, Query(ge=1, le=500)] = 50,
          match: Annotated[str | None, Query(max_length=16)] = None,
          type: Annotated[str | None, Query(max_length=16)] = None,
          verdict: Annotated[str | None, Query(max_length=24)] = None,
          category: Annotated[str | None, Query(max_length=64)] = None,
          evidence: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> dict[str, Any]:
    filters = service.queue_filters(ctx, evidence=evidence, type=type, category=category,
                                    verdict=verdict, match=match)
    return service.queue_page(ctx, filters, offset, limit)


@router.get("/cases/{case}/series/{series_id}")
def series(ctx: Ctx, series_id: PathId) -> dict[str, Any]:
    return service.series_view(ctx, series_id)


@router.get("/cases/{case}/items/{item_id}")
def item(ctx: Ctx, item_id: PathId) -> dict[str, Any]:
    return service.item_view(ctx, item_id)


@router.get("/cases/{case}/items/{item_id}/thumbnail")
def thumbnail(ctx: Ctx, item_id: PathId) -> Response:
    return Response(service.thumbnail(ctx, item_id), media_type="image/jpeg",
                    headers={"Cache-Control": "no-store"})


@router.post("/cases/{case}/items/{item_id}/reveal")
def reveal(ctx: Ctx, item_id: PathId) -> Response:
    return Response(service.reveal_now(ctx, item_id), media_type="image/jpeg",
                    headers={"Cache-Control": "no-store"})


@router.get("/cases/{case}/items/{item_id}/original")
def original(ctx: Ctx, item_id: PathId) -> Response:
    return service.original(ctx, item_id)


@router.get("/cases/{case}/keys")
def keys(ctx: Ctx) -> list[dict[str, str]]:
    return [{"key": k, "category": code, "label": label} for k, code, label in service.keys(ctx)]


@router.post("/cases/{case}/grades")
def grade(ctx: Ctx, body: GradeRequest) -> dict[str, Any]:
    return service.grade_items(ctx, body.items, body.series, body.category, body.flags,
                               body.note)


@router.post("/cases/{case}/grades/{batch}/undo")
def undo(ctx: Ctx, batch: str) -> dict[str, int]:
    return {"undone": service.undo_batch(ctx, batch)}


@router.post("/cases/{case}/items/{item_id}/segments")
def mark_segment(ctx: Ctx, item_id: PathId, body: SegmentRequest) -> dict[str, Any]:
    return service.mark_segment(ctx, item_id, body.start, body.end, body.category, body.note)


@router.post("/cases/{case}/segments/{mark_id}/undo")
def undo_segment(ctx: Ctx, mark_id: PathId) -> dict[str, bool]:
    return {"undone": service.undo_segment(ctx, mark_id)}


@router.get("/cases/{case}/disputes")
def disputes(ctx: Ctx, offset: Offset = 0,
             limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    return service.dispute_list(ctx, offset, limit)


@router.post("/cases/{case}/resolutions")
def resolve(ctx: Ctx, body: Resolution) -> dict[str, Any]:
    service.resolve_items(ctx, body.items, body.category, body.note)
    return {"resolved": sorted(set(body.items)), "category": body.category}
