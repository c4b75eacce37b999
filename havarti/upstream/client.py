"""Talking to the upstream simple index (PyPI by default).

Asks for PEP 691 JSON, accepts HTML; parses with pypi-simple; revalidates with
ETag / Last-Modified. Every failure becomes UpstreamError or UpstreamNotFound.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from pypi_simple import ProjectPage as SimplePage
from pypi_simple.errors import UnsupportedContentTypeError, UnsupportedRepoVersionError

from havarti import __version__
from havarti.domain.distributions import belongs_to
from havarti.domain.pages import JSON_TYPE
from havarti.errors import UpstreamError, UpstreamNotFound
from havarti.metrics import observe_upstream_hooks
from havarti.upstream.origins import MAX_REDIRECTS, Origins, RefusedURL

log = logging.getLogger(__name__)

ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


@dataclass(frozen=True)
class UpstreamFile:
    """One file of an upstream project page, as stored (JSON) between requests."""

    filename: str
    url: str
    hashes: dict[str, str]
    version: str | None = None
    requires_python: str | None = None
    yanked: bool | str = False
    core_metadata: bool | dict[str, str] = False
    size: int | None = None
    upload_time: str | None = None

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def upload_datetime(self) -> datetime | None:
        if not self.upload_time:
            return None
        return datetime.fromisoformat(self.upload_time.replace("Z", "+00:00"))


def dump_files(files: list[UpstreamFile]) -> str:
    """The files as stored between requests (JSON); ``load_files`` reads them back."""
    # vars(), not asdict(): asdict deep-copies every field, ten times slower on a 5,000-file page.
    return json.dumps([vars(f) for f in files], separators=(",", ":"))


def load_files(data: str) -> list[UpstreamFile]:
    return [UpstreamFile(**item) for item in json.loads(data)]


@dataclass(frozen=True)
class UpstreamResult:
    """A 200 (``files`` set) or a 304 (``files`` None) from upstream."""

    files: list[UpstreamFile] | None
    etag: str | None
    last_modified: str | None


#: The default UPSTREAM_MIN_RATE, bytes per second: a 2 GB file may take 11 hours.
DEFAULT_MIN_RATE = 50_000


class UpstreamClient:
    def __init__(self, index_url: str, timeout: float, *,
                 file_hosts: Iterable[str] | None = None,
                 min_rate: int = DEFAULT_MIN_RATE) -> None:
        self.index_url = index_url.rstrip("/") + "/"
        self.timeout = timeout
        #: Where files, .metadata and the JSON API may be fetched from (each redirect hop too).
        self.origins = Origins(self.index_url, file_hosts)
        self.min_rate = min_rate
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": f"havarti/{__version__} (caching proxy; +self-hosted)"},
            follow_redirects=True,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            event_hooks=observe_upstream_hooks(),
        )

    def project_url(self, name: str) -> str:
        return urljoin(self.index_url, f"{name}/")

    def fetch_project(self, name: str, etag: str | None = None,
                      last_modified: str | None = None) -> UpstreamResult:
        """GET the project's page, conditionally when validators are given."""
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        url = self.project_url(name)
        try:
            response = self.http.get(url, headers=headers)
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"upstream timed out for {name} ({type(exc).__name__})",
                                timeout=True) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream unreachable for {name}: {exc}") from None
        if response.status_code == 304:
            return UpstreamResult(None, etag, last_modified)
        if response.status_code == 404:
            raise UpstreamNotFound(f"no project {name!r} upstream")
        if response.status_code != 200:
            raise UpstreamError(f"upstream answered {response.status_code} for {name}")
        files = self._parse(name, response)
        return UpstreamResult(files, response.headers.get("ETag"),
                              response.headers.get("Last-Modified"))

    def _parse(self, name: str, response: httpx.Response) -> list[UpstreamFile]:
        content_type = response.headers.get("Content-Type", "text/html").split(";")[0].strip()
        try:
            if content_type == JSON_TYPE:
                page = SimplePage.from_json_data(response.json(), str(response.url))
            elif content_type in ("text/html", "application/vnd.pypi.simple.v1+html"):
                page = SimplePage.from_html(name, response.content, str(response.url),
                                            response.charset_encoding)
            else:
                raise UnsupportedContentTypeError(str(response.url), content_type)
        except (ValueError, KeyError, TypeError, UnsupportedContentTypeError,
                UnsupportedRepoVersionError) as exc:
            raise UpstreamError(f"upstream sent an unreadable page for {name}: {exc}") from None
        files = []
        foreign: list[str] = []
        for pkg in page.packages:
            if pkg.package_type is None and not pkg.filename.endswith((".whl", ".tar.gz", ".zip")):
                continue
            if not belongs_to(pkg.filename, name):
                # A file belongs to the project its filename names (else: cache poisoning).
                foreign.append(pkg.filename)
                continue
            yanked: bool | str = (pkg.yanked_reason or "") if pkg.is_yanked else False
            core: bool | dict[str, str] = False
            if pkg.has_metadata:
                core = dict(pkg.metadata_digests) if pkg.metadata_digests else True
            files.append(UpstreamFile(
                filename=pkg.filename,
                url=_strip_fragment(pkg.url),
                hashes=dict(pkg.digests),
                version=pkg.version,
                requires_python=pkg.requires_python,
                yanked=yanked,
                core_metadata=core,
                size=pkg.size,
                upload_time=pkg.upload_time.isoformat() if pkg.upload_time else None,
            ))
        if foreign:
            log_foreign(name, foreign)
        return files

    @contextmanager
    def stream(self, url: str, limit: int | None = None) -> Iterator[FileStream]:
        """Stream an upstream file; raises UpstreamError unless upstream answers 200.

        The URL and every redirect hop must pass ``origins`` (RefusedURL otherwise).
        Reading is bounded: ``limit`` bytes at most, and at least UPSTREAM_MIN_RATE
        bytes a second over every UPSTREAM_TIMEOUT seconds.
        """
        try:
            response = self._open(url)
            try:
                if response.status_code == 404:
                    raise UpstreamNotFound(f"upstream has no {url.rsplit('/', 1)[-1]}")
                if response.status_code != 200:
                    raise UpstreamError(f"upstream answered {response.status_code} for a file")
                yield FileStream(response, limit, self.min_rate, self.timeout)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"upstream timed out ({type(exc).__name__})", timeout=True) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream failed: {exc}") from None

    def _open(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET ``url`` (streamed), following redirects by hand: each hop is checked by
        ``origins`` before it is asked. The caller closes the response."""
        request = self.http.build_request("GET", self.origins.check(url), headers=headers)
        for _ in range(MAX_REDIRECTS + 1):
            response = self.http.send(request, stream=True, follow_redirects=False)
            following = response.next_request
            if following is None:
                return response
            response.close()
            self.origins.check(str(following.url))
            request = following
        raise RefusedURL(f"upstream file URL refused: more than {MAX_REDIRECTS} redirects")

    def check_file_url(self, url: str) -> None:
        """Raise RefusedURL unless Havarti may send a client to (or fetch) ``url``."""
        self.origins.check(url)

    def get_bytes(self, url: str, limit: int = 50 * 2**20) -> bytes:
        """A whole (small) upstream response; raises UpstreamError past ``limit`` bytes."""
        with self.stream(url, limit) as response:
            return b"".join(response.chunks(decoded=True))

    def json_api_url(self, path: str) -> str:
        """The PyPI JSON API beside the simple index (``/simple/`` → ``/pypi/...``)."""
        parts = urlsplit(self.index_url)
        root = parts.path.rstrip("/")
        if root.endswith("/simple"):
            root = root[: -len("/simple")]
        return urlunsplit((parts.scheme, parts.netloc, f"{root}/pypi/{path}", "", ""))

    def close(self) -> None:
        self.http.close()


def _strip_fragment(url: str) -> str:
    return url.split("#", 1)[0]


def log_foreign(project: str, filenames: list[str]) -> None:
    """One line per page for the entries dropped because they name another project."""
    shown = ", ".join(repr(f) for f in filenames[:5])
    more = f" and {len(filenames) - 5} more" if len(filenames) > 5 else ""
    log.warning("upstream-files-dropped project=%s count=%d reason=filename names another "
                "project or is no wheel/sdist name files=%s%s", project, len(filenames), shown, more)


class FileStream:
    """An upstream file's body, read with bounds on its size and on how slowly it may come."""

    def __init__(self, response: httpx.Response, limit: int | None, min_rate: int,
                 window: float) -> None:
        self.response = response
        self.limit = limit
        self.min_rate = min_rate
        self.window = window

    def chunks(self, decoded: bool = False) -> Iterator[bytes]:
        """The body as the network delivers it (raw bytes; ``decoded``: Content-Encoding undone).

        Raises UpstreamError past ``limit`` bytes, or when a window of UPSTREAM_TIMEOUT
        seconds brings fewer than UPSTREAM_MIN_RATE bytes a second: a stream that dribbles
        a byte at a time never trips the per-read timeout, so it is bounded here.
        """
        received = 0
        window_start, window_bytes = time.monotonic(), 0
        source = self.response.iter_bytes() if decoded else self.response.iter_raw()
        for chunk in source:
            received += len(chunk)
            if self.limit is not None and received > self.limit:
                raise UpstreamError(f"upstream sent more than {self.limit} bytes")
            window_bytes += len(chunk)
            elapsed = time.monotonic() - window_start
            if elapsed >= self.window:
                if window_bytes < self.min_rate * elapsed:
                    raise UpstreamError(
                        f"upstream too slow: {window_bytes} bytes in {elapsed:.1f} s, under "
                        f"UPSTREAM_MIN_RATE ({self.min_rate} bytes/s)", timeout=True)
                window_start, window_bytes = time.monotonic(), 0
            yield chunk
