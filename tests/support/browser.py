"""The console in a real browser: uvicorn serving the app on a free loopback port in a thread of
the test process, and Debian's Chromium driven by Playwright (Playwright's own browser download
is not reachable here). Screenshots go to ``var/test-artifacts/screenshots/`` (CI keeps it)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from tests.support.mosquitto import free_port
from tests.support.shared import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "var" / "test-artifacts" / "screenshots"


def chromium_env(language: str = "zh-CN") -> dict[str, str]:
    """The environment Chromium is started with, for a person whose browser speaks
    ``language``. A date field shows its parts in the order of Chromium's own language, which
    on Linux comes from LANGUAGE / LC_ALL / LANG and nothing else: not Playwright's ``locale``
    (navigator.language, Intl, Accept-Language), not ``--lang`` (read on Windows and ChromeOS
    only), not the page's ``lang`` attribute. Without the language's pak (Debian's
    chromium-l10n, which scripts/setup.sh installs) Chromium falls back to en-US: mm/dd/yyyy."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("LANGUAGE", "LC_ALL", "LANG")}
    return {**env, "LANG": "C.UTF-8", "LANGUAGE": language.replace("-", "_")}


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL once it accepts connections."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console-http", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the console's server stopped at start")
            thread.join(0.02)  # wait for the server thread's own start-up flag
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def browser(language: str = "zh-CN") -> Iterator[Any]:
    """Chromium as a ``language`` user's (:func:`chromium_env`); give each context the same
    ``locale`` for what the page reads (navigator.language, Accept-Language)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS, env=chromium_env(language))
        try:
            yield launched
        finally:
            launched.close()


@asynccontextmanager
async def async_page(viewport: tuple[int, int] = (1280, 900),
                     language: str = "zh-CN") -> AsyncIterator[Any]:
    """A page of Chromium driven by Playwright's async API (inside a test's own event loop), as
    a ``language`` user's (:func:`browser`)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                    headless=True, args=CHROMIUM_ARGS,
                                                    env=chromium_env(language))
        try:
            yield await launched.new_page(viewport={"width": viewport[0],
                                                    "height": viewport[1]},
                                          locale=language)
        finally:
            await launched.close()


def date_parts(page: Any, selector: str) -> list[tuple[str, int]]:
    """The parts a date field shows, in the order shown, as Chromium's accessibility tree names
    them: ``[("年", 2026), ("月", 12), ("日", 6)]`` for a zh-CN browser, Month, Day, Year for an
    en-US one (a value of 0: the part is empty)."""
    session = page.context.new_cdp_session(page)
    try:
        root = session.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = session.send("DOM.querySelector", {"nodeId": root, "selector": selector})
        found = session.send("Accessibility.queryAXTree", {"nodeId": node["nodeId"],
                                                           "role": "spinbutton"})
    finally:
        session.detach()
    return [(str(n["name"]["value"]).split()[0], n.get("value", {}).get("value"))
            for n in found["nodes"]]


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
