"""`/api/openapi.json` (the schema of the `/api/v1` routes only, with the bearer scheme) and `/api/docs`, a page
rendered on the server from that schema: no CDN and no script, so it lives under the app's CSP as every page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from pulsecheck import __version__
from pulsecheck.web.context import page

router = APIRouter(prefix="/api", include_in_schema=False)
PREFIX = "/api/v1"
METHODS = ("get", "post", "put", "patch", "delete")


def api_schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of the API routes, built once per app."""
    from fastapi.openapi.utils import get_openapi

    cached: dict[str, Any] | None = getattr(app.state, "api_schema", None)
    if cached is None:
        cached = get_openapi(
            title="pulsecheck API", version=__version__, routes=app.routes,
            description="The CLI's reads and actions over HTTP, with the shapes of its `--json` output. "
                        "Authenticate with a personal access token: `pulsecheck tokens create NAME`.",
        )
        cached["paths"] = {path: item for path, item in cached["paths"].items() if path.startswith(PREFIX)}
        _keep_used_schemas(cached)
        app.state.api_schema = cached
    return cached


def _refs(node: Any) -> set[str]:
    """The component schema names `node` refers to."""
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _keep_used_schemas(schema: dict[str, Any]) -> None:
    """Drop the component schemas of the HTML pages' forms: keep those the API paths reach."""
    components = schema.get("components", {}).get("schemas", {})
    wanted, todo = set(), _refs(schema["paths"])
    while todo:
        name = todo.pop()
        if name not in wanted and name in components:
            wanted.add(name)
            todo |= _refs(components[name])
    schema.setdefault("components", {})["schemas"] = {k: v for k, v in components.items() if k in wanted}


@router.get("/openapi.json")
def openapi(request: Request) -> Response:
    return JSONResponse(api_schema(request.app))


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation of `schema` as the docs page lists it: method, path, summary, parameters, body, statuses."""
    found = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ref = body.get("$ref", "").rsplit("/", 1)[-1]
            fields = schema.get("components", {}).get("schemas", {}).get(ref, {}).get("properties", {})
            found.append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "parameters": [(p["name"], p["in"], p.get("required", False)) for p in op.get("parameters", [])],
                "body": sorted(fields), "statuses": sorted(op.get("responses", {})),
            })
    return found


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> Response:
    schema = api_schema(request.app)
    return page(request, "api_docs.html", title=schema["info"]["title"], description=schema["info"]["description"],
                operations=operations(schema))
