"""Every route of the console: pages, then the API."""

from __future__ import annotations

from typing import Any

from terminal.hq.console import api, pages

ROUTES: list[Any] = [*pages.ROUTES, *api.ROUTES]
