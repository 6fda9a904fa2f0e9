"""The OpenAPI file the console serves describes exactly the API routes it has."""

from __future__ import annotations

import re

from starlette.routing import Route

from terminal.hq.console.api import OPENAPI
from terminal.hq.console.routes import ROUTES


def test_every_api_route_is_described_and_nothing_else() -> None:
    routes = {(re.sub(r"\{member_id\}", "{id}", route.path.removeprefix("/api/v1")), method)
              for route in ROUTES if isinstance(route, Route) and route.path.startswith("/api/")
              for method in route.methods - {"HEAD"}}
    described = {(path, method.upper()) for path, item in OPENAPI["paths"].items()
                 for method in item}
    assert routes == described
    assert OPENAPI["servers"] == [{"url": "/api/v1"}]
