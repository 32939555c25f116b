"""PDF plumbing: safe WeasyPrint rendering with a time limit, checking and joining PDFs.

WeasyPrint runs in a small pool of child processes rather than in the caller's thread:
a render that runs away (a huge table in written literature, a pathological layout) can
then be stopped by killing its process, which no thread can do. The children live on,
so fonts and the shared stylesheet are loaded once per child, not once per pack.
This module imports neither Flask nor the database: the children need neither.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import mimetypes
import multiprocessing
import signal
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the origin templates' relative URLs resolve against; only /static/ under it is served
BASE_URL = "https://portal.invalid/"
_STATIC_PREFIX = BASE_URL + "static/"


class RenderError(Exception):
    """WeasyPrint failed or ran past its time limit."""


class RenderCancelled(Exception):
    """The worker is stopping: the render was abandoned before anything was sent."""


class PdfProblem(Exception):
    """A PDF we cannot use (not a PDF, damaged, encrypted, too many pages)."""


def make_url_fetcher(static_dir: str) -> Any:
    """A WeasyPrint fetcher that serves ``static_dir`` in-process and refuses anything else.

    No ``file://`` (it would read any file the worker can), no network (a template or a
    brochure's text must never make the worker call out, nor hang it on a slow host).
    """
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    root = Path(static_dir).resolve()

    class StaticOnlyFetcher(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            if url.startswith("data:"):
                return super().fetch(url, headers)  # inline data carries no outside reach
            if not url.startswith(_STATIC_PREFIX):
                raise ValueError(f"refused to fetch {url[:80]!r}: only the portal's static files")
            relative = url[len(_STATIC_PREFIX):].split("?", 1)[0].split("#", 1)[0]
            path = (root / relative).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                raise ValueError(f"no static file {relative[:80]!r}")
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime})

    return StaticOnlyFetcher(allowed_protocols=("https", "data"), allow_redirects=False)


# --- in the child process ----------------------------------------------------------------

_child_css: dict[str, Any] = {}
_child_fetchers: dict[str, Any] = {}


def _child_init() -> None:
    import logging

    # The parent decides when we stop. A terminal's Ctrl-C and systemd's TERM reach the
    # whole process group; a child dying of them would leave the pool's queue lock held
    # (an idle child waits for work holding it) and the parent's shutdown stuck on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Still none is left behind when the worker dies another way (SIGKILL, the OOM
    # killer): the task queue's pipe closes and the child leaves (test_serve_restarts_worker).
    # A refused URL is logged by WeasyPrint as a warning; keep it, but not as noise.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)


def _render_in_child(html: str, css: str, static_dir: str) -> bytes:
    from weasyprint import CSS, HTML

    fetcher = _child_fetchers.get(static_dir)
    if fetcher is None:
        fetcher = _child_fetchers[static_dir] = make_url_fetcher(static_dir)
    stylesheets = []
    if css:
        key = hashlib.sha256(css.encode()).hexdigest()
        sheet = _child_css.get(key)
        if sheet is None:  # the pack's stylesheet is parsed once per child
            sheet = _child_css[key] = CSS(string=css, url_fetcher=fetcher, base_url=BASE_URL)
        stylesheets.append(sheet)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        document = HTML(string=html, base_url=BASE_URL, url_fetcher=fetcher)
        return document.write_pdf(stylesheets=stylesheets)  # type: ignore[no-any-return]


# --- in the caller -----------------------------------------------------------------------

_pool: Any = None
_pool_size = 0
_pool_lock = threading.Lock()
#: set when the worker is told to stop: renders in progress are abandoned, none start
stopping = threading.Event()
#: how often a waiting caller looks at ``stopping``
_POLL_SECONDS = 0.1


def _get_pool(processes: int) -> Any:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != processes:
            if _pool is not None:
                _terminate(_pool)
            # spawn, not fork: the caller may be a threaded worker or web server.
            context = multiprocessing.get_context("spawn")
            # A terminal's Ctrl-C reaches the whole process group; a child still starting
            # (before _child_init) would die of it mid-import, with a traceback. An
            # ignored signal stays ignored across exec, and only the main thread may
            # change that: the worker starts the pool from there (start_pool) before it
            # takes jobs. (Not TERM: the parent must not miss it. A child that a TERM to
            # the group kills while starting holds no lock; the pool replaces it.)
            in_main = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
            try:
                _pool = context.Pool(processes=processes, initializer=_child_init,
                                     maxtasksperchild=200)
            finally:
                if in_main:
                    signal.signal(signal.SIGINT, previous)
            _pool_size = processes
        return _pool


def _terminate(pool: Any, grace: float = 1.0) -> None:
    # Closing first lets idle children take their end-of-work mark and leave, letting go
    # of the task queue's lock cleanly; a child still rendering (its render abandoned) is
    # killed after ``grace``. Only then Pool.terminate() for the pool's threads: it takes
    # that lock, and would block for ever on a lock a killed child held, so it runs aside
    # and is waited for briefly. The children ignore TERM (a TERM to the group must not
    # kill them mid-lock), so they are killed, never terminated; none outlives us, none is
    # left defunct. (A child that died starting, say of that TERM, may be replaced by the
    # pool meanwhile: whatever children it has are looked at again at the end.)
    pool.close()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(c.exitcode is None for c in pool._pool):
        time.sleep(_POLL_SECONDS / 2)
    _kill_children(pool)
    stopper = threading.Thread(target=pool.terminate, name="pdf-pool-stop", daemon=True)
    stopper.start()
    stopper.join(grace)
    _kill_children(pool)


def _kill_children(pool: Any) -> None:
    # The pool's processes (private, but the only handle on them), and any other child
    # multiprocessing knows of: only render pools make them in this process.
    for child in {*pool._pool, *multiprocessing.active_children()}:
        if child.exitcode is None:
            child.kill()
        child.join(1.0)


def _import_renderer() -> None:
    import weasyprint  # noqa: F401  # the second or so a first render would spend on it


def start_pool(processes: int) -> None:
    """Start the render children now, and their import of WeasyPrint without waiting for
    it (the first render then costs only itself); from the main thread they ignore Ctrl-C
    from birth."""
    pool = _get_pool(processes)
    for _ in range(processes):
        pool.apply_async(_import_renderer)


def shutdown() -> None:
    """Stop the render children (at exit, and after a render ran over its time)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        _terminate(pool)


def request_stop() -> None:
    """The worker is stopping: abandon renders in progress and refuse new ones."""
    stopping.set()


atexit.register(shutdown)


def render_pdf(html: str, *, css: str = "", static_dir: str, timeout: float,
               processes: int = 1) -> bytes:
    """Render ``html`` to PDF bytes in a render child; ``RenderError`` past ``timeout`` s,
    ``RenderCancelled`` when the worker is told to stop meanwhile."""
    if stopping.is_set():
        raise RenderCancelled("The worker is stopping.")
    pending = _get_pool(processes).apply_async(_render_in_child, (html, css, static_dir))
    deadline = time.monotonic() + timeout
    try:
        # Wait in short steps: a stop must not wait for a render of up to ``timeout`` s.
        while not pending.ready():
            if stopping.is_set():
                raise RenderCancelled("The worker is stopping; the render was abandoned.")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise multiprocessing.TimeoutError
            pending.wait(min(_POLL_SECONDS, remaining))  # returns as soon as it is done
        return pending.get(0)  # type: ignore[no-any-return]
    except multiprocessing.TimeoutError:
        shutdown()  # the only way to stop a runaway render is to end its process
        raise RenderError(f"Rendering took longer than {timeout:g} seconds and was stopped.") \
            from None
    except RenderCancelled:
        raise
    except Exception as error:
        raise RenderError(f"Rendering failed: {type(error).__name__}: {error}") from error


# --- checking and joining ----------------------------------------------------------------


@dataclass(frozen=True)
class PdfInfo:
    page_count: int
    sha256: str
    size_bytes: int


def inspect_pdf(data: bytes, *, max_bytes: int, max_pages: int) -> PdfInfo:
    """Check an uploaded file really is a usable PDF; ``PdfProblem`` says what is wrong."""
    from pypdf import PdfReader

    if len(data) == 0:
        raise PdfProblem("The file is empty.")
    if len(data) > max_bytes:
        raise PdfProblem(f"The file is {len(data) / 1_048_576:.1f} MB; the limit is "
                         f"{max_bytes / 1_048_576:.0f} MB. Compress it and upload again.")
    # The name and the browser's content type are the uploader's word; the bytes are not.
    if not data[:1024].lstrip().startswith(b"%PDF-"):
        raise PdfProblem("That is not a PDF file (whatever its name says). Export it as PDF "
                         "and upload that.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data), strict=True)
            if reader.is_encrypted:
                raise PdfProblem("The PDF is password-protected or encrypted; packs cannot "
                                 "include it. Upload a copy saved without protection.")
            pages = len(reader.pages)
            for page in reader.pages:  # a damaged page tree shows up here, not in a pack
                page.mediabox  # noqa: B018
    except PdfProblem:
        raise
    except Exception as error:
        raise PdfProblem(f"The PDF is damaged and cannot be read ({type(error).__name__}). "
                         "Save it again from the original program and upload that.") from None
    if pages == 0:
        raise PdfProblem("The PDF has no pages.")
    if pages > max_pages:
        raise PdfProblem(f"The PDF has {pages} pages; at most {max_pages} fit in a pack.")
    return PdfInfo(page_count=pages, sha256=hashlib.sha256(data).hexdigest(),
                   size_bytes=len(data))


def join_pdfs(parts: list[bytes]) -> bytes:
    """One PDF made of ``parts`` in order."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for part in parts:
            writer.append(io.BytesIO(part))
        out = io.BytesIO()
        writer.write(out)
    return out.getvalue()


def page_count(data: bytes) -> int:
    """Pages in a PDF we made ourselves."""
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(data)).pages)


class LiteratureCache:
    """Joined literature per set of versions: the static part of a pack is built once."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[tuple[str, ...], bytes] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...], build: Any) -> bytes:
        """The joined PDF for ``key`` (stored names, immutable files), built on a miss."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        data: bytes = build()
        with self._lock:
            self._items[key] = data
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return data

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


literature_cache = LiteratureCache()
