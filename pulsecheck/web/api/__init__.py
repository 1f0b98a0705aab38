"""The JSON API, mounted at `/api/v1` by the app factory (`router`), and its schema and docs at `/api`
(`docs_router`). Routes authenticate with personal access tokens (`base.token_principal`, the same `Principal`
as the pages') and call the CLI's services and `--json` views."""

from __future__ import annotations

from fastapi import APIRouter

from pulsecheck.web.api import accounts, cycles, escalations, reviews
from pulsecheck.web.api.base import JsonErrorRoute
from pulsecheck.web.api.docs import router as docs_router

__all__ = ["docs_router", "router"]

router = APIRouter(route_class=JsonErrorRoute)


@router.get("/health", tags=["meta"], summary="Whether the app is up (no token; says nothing about the data)")
def health() -> dict[str, str]:
    return {"status": "ok"}


for _module in (reviews, accounts, escalations, cycles):
    router.include_router(_module.router)
