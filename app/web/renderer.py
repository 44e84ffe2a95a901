"""Map images (PNG, PDF) drawn by one headless Chromium per process, a few pages at a time.

Starting Chromium for every image cost each request 150–750 MB and a second of CPU, and thirty
clients started over a hundred browsers. Here a process has one browser, started on first use
and kept; an image is drawn in a page of its own (a fresh browser context, so nothing of one
render is seen by the next). At most ``HONGTU_RENDER_PAGES`` pages draw at once; a request that
finds them all busy waits up to ``HONGTU_RENDER_WAIT_S`` seconds for one (at most
``QUEUE_PER_PAGE`` such requests per page wait), else gets :class:`RenderBusy` (answered 503
with Retry-After).

Playwright's objects belong to the thread that made them, so the browser lives in one thread of
its own running an asyncio loop; request threads hand it work and wait for the answer.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from ..processes import processes, thread_ids

#: Requests that may wait for a page, per page; any more are answered busy at once.
QUEUE_PER_PAGE = 1
#: Longest one image may take to draw, in seconds.
RENDER_SECONDS = 60
#: Longest a render waits for a base map's tiles after the map has drawn (s).
TILE_SECONDS = 10
#: Chromium's own switches: no GPU, nothing fetched in the background (the machine may be
#: offline, and a render must reach nothing but its own page).
CHROMIUM_ARGS = (
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


class RenderError(RuntimeError):
    """The image renderer (headless Chromium) is missing or failed."""


class RenderBusy(RenderError):
    """Every page of this process's browser is drawing; try again in ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Renderer:
    """One browser and a bounded set of pages for this process (see the module's description)."""

    def __init__(self, executable: str, pages: int, wait: float):
        self.executable = executable
        self.wait = wait
        self._slots = threading.BoundedSemaphore(pages)
        self.queue = QUEUE_PER_PAGE * pages
        self._waiting = 0
        self._counting = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._browser = None
        self._playwright = None
        self._started = threading.Lock()
        self._launching: asyncio.Lock | None = None

    @contextmanager
    def page(self) -> Iterator[None]:
        """Hold one of the pages while the block makes its page and calls :meth:`draw`: the
        whole of a map-image request is bounded, not only the drawing.

        Raises
        ------
        RenderBusy
            When the queue is full, or no page became free within ``wait`` seconds.
        """
        with self._counting:
            # Requests waiting hold a worker thread each: beyond a short queue, answer at once
            # and leave the threads to everyone else's requests.
            full = self._waiting >= self.queue
            if not full:
                self._waiting += 1
        if full:
            raise self._busy()
        try:
            free = self._slots.acquire(timeout=self.wait)
        finally:
            with self._counting:
                self._waiting -= 1
        if not free:
            raise self._busy()
        try:
            yield
        finally:
            self._slots.release()

    def draw(
        self, html: str, fmt: str, width: int, height: int, scale: float = 1.0, hosts: frozenset[str] = frozenset()
    ) -> bytes:
        """A PNG or PDF of ``html`` laid out at ``width`` × ``height`` CSS pixels (inside
        :meth:`page`); a PNG has ``scale`` device pixels per CSS pixel. The page may load from
        ``hosts`` (a base map's tile hosts) and nothing else.

        Raises
        ------
        RenderError
            When Chromium is missing or the page did not draw in time.
        """
        drawing = self._draw(html, fmt, width, height, scale, hosts)
        future = asyncio.run_coroutine_threadsafe(drawing, self._running_loop())
        try:
            return future.result(timeout=RENDER_SECONDS + 5)
        except FutureTimeout:
            future.cancel()
            raise RenderError("地图图片绘制超时 / drawing the map image took too long") from None

    def _busy(self) -> RenderBusy:
        return RenderBusy(
            "地图图片导出繁忙，请稍后重试 / map images are busy right now: retry in a moment",
            retry_after=max(5, int(self.wait)),
        )

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._started:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="hongtu-renderer", daemon=True).start()
                self._loop = loop
                atexit.register(self.close)
        return self._loop

    async def _browser_ready(self):
        # Pages asked for at once must not each start a browser of their own.
        if self._launching is None:
            self._launching = asyncio.Lock()
        async with self._launching:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            from playwright.async_api import async_playwright

            if self._playwright is None:
                _keep_children_from_raising_priority()
                self._playwright = await async_playwright().start()
                _lower_priority_of_children()
            # Chromium's sandbox needs user namespaces a root process does not get.
            args = [*CHROMIUM_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
            self._browser = await self._playwright.chromium.launch(executable_path=self.executable, args=args)
            return self._browser

    async def _draw(self, html: str, fmt: str, width: int, height: int, scale: float, hosts: frozenset[str]) -> bytes:
        browser = await self._browser_ready()
        context = await browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale)
        try:
            page = await context.new_page()
            # Nothing leaves the machine while rendering but the base map's tiles, from its own hosts.
            await page.route("**/*", _only_from(hosts))
            await page.set_content(html, wait_until="load", timeout=RENDER_SECONDS * 1000)
            await page.wait_for_function("window.hongtuReady === true", timeout=RENDER_SECONDS * 1000)
            if hosts:
                try:
                    await page.wait_for_load_state("networkidle", timeout=TILE_SECONDS * 1000)
                except Exception:  # tiles that never come leave the map without them, still drawn
                    pass
            # On paper the zoom buttons mean nothing.
            await page.add_style_tag(content=".leaflet-control-zoom { display: none; }")
            await page.wait_for_timeout(300)
            if fmt == "png":
                return await page.screenshot(type="png", full_page=False)
            return await page.pdf(width=f"{width}px", height=f"{height}px", print_background=True, page_ranges="1")
        finally:
            await context.close()

    def close(self) -> None:
        """Close the browser (at exit: Chromium's processes end with it)."""
        if self._loop is None:
            return

        async def stop():
            if self._browser is not None:
                await self._browser.close()
            if self._playwright is not None:
                await self._playwright.stop()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        except Exception:  # at exit, a browser already gone is as good as closed
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop = None


def _only_from(hosts: frozenset[str]):
    """A route handler letting through requests to ``hosts`` over HTTP(S) only."""

    async def handle(route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https") and parts.hostname in hosts:
            await route.continue_()
        else:
            await route.abort()

    return handle


#: The browser's CPU priority (nice value, the lowest there is): when images and requests
#: compete for the cores, the requests' short answers come first.
BROWSER_NICE = 19
#: Linux's ``prctl`` option and capability numbers (``<linux/prctl.h>``, ``<linux/capability.h>``).
_PR_CAPBSET_DROP = 24
_CAP_SYS_NICE = 23


def _keep_children_from_raising_priority() -> None:
    """Drop CAP_SYS_NICE from the calling thread's capability bounding set, so that the
    processes it starts cannot have it even as root.

    Chromium raises its main threads to nice 0 and its compositing threads to −8 whenever it
    may; root may, so the lowered priority it inherits would not last. Only this thread (the
    renderer's, which starts Playwright's driver) loses the capability; the web worker keeps it.
    """
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_CAPBSET_DROP, _CAP_SYS_NICE, 0, 0, 0) != 0:
        raise RenderError(f"cannot drop CAP_SYS_NICE for the renderer: {os.strerror(ctypes.get_errno())}")


def _lower_priority_of_children() -> None:
    """Set every thread of this process's children (Playwright's driver, which then starts
    Chromium: its processes inherit the priority) to ``BROWSER_NICE``."""
    me = os.getpid()
    for child in processes().values():
        if child.parent != me:
            continue
        for tid in thread_ids(child.pid):
            try:
                os.setpriority(os.PRIO_PROCESS, tid, BROWSER_NICE)
            except OSError:
                continue


_renderers: dict[tuple, Renderer] = {}
_renderers_lock = threading.Lock()


def renderer(config: dict) -> Renderer:
    """This process's renderer for the app's settings (made on first use)."""
    executable = config["HONGTU_CHROMIUM"] or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        raise RenderError(
            "图片导出需要 Chromium（scripts/setup.sh 会安装）/ "
            "image export needs Chromium (scripts/setup.sh installs it)"
        )
    try:
        import playwright  # noqa: F401
    except ImportError as exc:
        raise RenderError(f"图片导出需要 playwright / image export needs playwright: {exc}") from None
    key = (executable, config["HONGTU_RENDER_PAGES"], config["HONGTU_RENDER_WAIT_S"])
    with _renderers_lock:
        if key not in _renderers:
            _renderers[key] = Renderer(executable, config["HONGTU_RENDER_PAGES"], config["HONGTU_RENDER_WAIT_S"])
        return _renderers[key]
