"""Every route of the console: pages, the fleet, then the API."""

from __future__ import annotations

from typing import Any

from terminal.hq.console import (
    api,
    care_pages,
    enroll_pages,
    fleet_pages,
    pages,
    release_pages,
    report_pages,
    rules_pages,
)

ROUTES: list[Any] = [*pages.ROUTES, *fleet_pages.ROUTES, *rules_pages.ROUTES,
                     *release_pages.ROUTES, *report_pages.ROUTES, *enroll_pages.ROUTES,
                     *care_pages.ROUTES, *api.ROUTES]
