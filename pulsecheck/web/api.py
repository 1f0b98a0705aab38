"""The JSON API, mounted at `/api/v1` by the app factory. Its routes will authenticate with a personal access
token dependency that returns an `auth.Principal`, beside the pages' `auth.signed_in`, and call the same
services with the CLI's `--json` shapes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()


@router.get("/health")
def health() -> dict[str, str]:
    """Whether the app is up (no sign-in; says nothing about the data)."""
    return {"status": "ok"}
