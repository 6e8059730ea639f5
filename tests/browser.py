"""Open gen-eval's HTML pages in a real headless browser and report what went wrong there.

Used by the report tests (and meant for the dashboards'): Playwright's Python package drives
the system's Chromium (Debian's ``chromium`` package; ``playwright install`` is never needed).
Set ``GEN_EVAL_CHROMIUM`` to use another Chromium or Chrome executable.

Also a small command line, to look at a page by hand::

    .venv/bin/python tests/browser.py runs/mine/report.html --screenshot /tmp/report.png
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

ENV_VARIABLE = "GEN_EVAL_CHROMIUM"
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Schemes a self-contained page may load from; anything else means it needs a network.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def find_chromium() -> str | None:
    """The Chromium-family executable to drive, or None.

    Returns
    -------
    str or None
        ``$GEN_EVAL_CHROMIUM`` when set (even if wrong, so a typo is reported rather than
        silently replaced), else the first of chromium, chromium-browser, google-chrome and
        google-chrome-stable found on PATH.
    """
    configured = os.environ.get(ENV_VARIABLE)
    if configured:
        return shutil.which(configured) or configured
    for name in EXECUTABLES:
        found = shutil.which(name)
        if found:
            return found
    return None


def unavailable_reason() -> str | None:
    """Why a browser test cannot run here (None when it can).

    Returns
    -------
    str or None
        A sentence naming what is missing and how to get it.
    """
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    executable = find_chromium()
    if executable is None:
        return (
            f"no Chromium found on PATH ({', '.join(EXECUTABLES)}); install Debian's chromium "
            f"(apt-get install chromium) or set {ENV_VARIABLE}"
        )
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        return f"{ENV_VARIABLE}={executable} is not an executable file"
    return None


@dataclass
class PageVisit:
    """What happened while a page was open.

    Attributes
    ----------
    url : str
        The address opened.
    title : str
        The document title.
    console_errors : list of str
        ``console.error`` messages, including resources that failed to load.
    page_errors : list of str
        Uncaught JavaScript exceptions.
    external_requests : list of str
        Requests to anything but file:, data:, blob: and about: URLs (a self-contained page
        makes none).
    screenshot : Path or None
        Where the screenshot was saved.
    seconds : float
        Time from navigation to the last wait.
    values : list
        The values of the ``expressions`` passed to :meth:`Browser.open`.
    """

    url: str
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    seconds: float = 0.0
    values: list[object] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Console and page errors together (empty when the page ran cleanly)."""
        return [f"console: {m}" for m in self.console_errors] + [f"page: {m}" for m in self.page_errors]


class Browser:
    """A headless Chromium driven by Playwright; use as a context manager.

    Parameters
    ----------
    executable : str, optional
        The browser to launch (default :func:`find_chromium`).
    width, height : int
        Viewport in CSS pixels (default 1280 x 800, a laptop screen).
    """

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 800) -> None:
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise RuntimeError(unavailable_reason() or "no Chromium found")
        self.viewport = {"width": width, "height": height}
        self._playwright = None
        self._browser = None

    def __enter__(self) -> Browser:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
            self._browser = self._playwright.chromium.launch(
                executable_path=self.executable, args=["--no-sandbox", "--disable-gpu"]
            )
        except Exception:
            self._playwright.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Shut the browser and Playwright down (safe to call twice)."""
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None

    def open(
        self,
        url: str | Path,
        wait_for: str | None = None,
        wait_until: str | None = None,
        screenshot: str | Path | None = None,
        expressions: Sequence[str] = (),
        width: int | None = None,
        timeout_s: float = 30.0,
    ) -> PageVisit:
        """Open ``url``, wait, optionally screenshot the whole page, and report its errors.

        Parameters
        ----------
        url : str or Path
            An http(s):// or file:// address, or a local path (made a file:// URL).
        wait_for : str, optional
            A CSS selector that must become visible.
        wait_until : str, optional
            A JavaScript expression that must become truthy (for example, every plot drawn).
        screenshot : str or Path, optional
            Save a full-page PNG here (parent folders are created).
        expressions : sequence of str
            JavaScript expressions evaluated once the waits are over; their values land in
            ``PageVisit.values`` (for example the page's scroll width).
        width : int, optional
            Viewport width for this page (default: the browser's).
        timeout_s : float
            Limit for loading and for each wait.

        Returns
        -------
        PageVisit
            Title, console and page errors, external requests, screenshot path, time taken.
        """
        if self._browser is None:
            raise RuntimeError("use Browser as a context manager (with Browser() as browser: ...)")
        if isinstance(url, Path) or "://" not in str(url):
            url = Path(url).resolve().as_uri()
        visit = PageVisit(str(url))
        viewport = dict(self.viewport, **({"width": width} if width else {}))
        page = self._browser.new_page(viewport=viewport)

        def on_console(message) -> None:  # playwright ConsoleMessage
            if message.type == "error":
                visit.console_errors.append(message.text)

        def on_request(request) -> None:  # playwright Request
            if not request.url.startswith(LOCAL_SCHEMES):
                visit.external_requests.append(request.url)

        page.on("console", on_console)
        page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
        page.on("request", on_request)
        timeout_ms = timeout_s * 1000
        started = time.perf_counter()
        try:
            page.goto(visit.url, wait_until="load", timeout=timeout_ms)
            if wait_for is not None:
                page.wait_for_selector(wait_for, state="visible", timeout=timeout_ms)
            if wait_until is not None:
                page.wait_for_function(wait_until, timeout=timeout_ms)
            visit.seconds = time.perf_counter() - started
            visit.title = page.title()
            visit.values = [page.evaluate(expression) for expression in expressions]
            if screenshot is not None:
                visit.screenshot = Path(screenshot)
                visit.screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(visit.screenshot), full_page=True)
        finally:
            page.close()
        return visit


def main(argv: list[str] | None = None) -> int:
    """Open a page, print its errors, optionally save a screenshot; exit status 1 on errors."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="file path, file:// or http(s):// URL")
    parser.add_argument("--screenshot", type=Path, help="save a full-page PNG here")
    parser.add_argument("--wait-for", help="CSS selector to wait for")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        print(f"cannot open a browser: {reason}")
        return 2
    with Browser(width=args.width) as browser:
        visit = browser.open(args.url, wait_for=args.wait_for, screenshot=args.screenshot)
    print(f"{visit.title!r} opened in {visit.seconds:.1f} s")
    for line in visit.errors + [f"external request: {u}" for u in visit.external_requests]:
        print(line)
    if visit.screenshot:
        print(f"screenshot: {visit.screenshot}")
    return 1 if visit.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
