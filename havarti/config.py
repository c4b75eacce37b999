"""Settings: every knob Havarti has, read once from environment variables.

The seed's names (PORT, PASSCODE, STORAGE, DB_URI, REDIS_URI, DEBUG, FALLBACK,
PACKAGE_CACHE and the S3_/RACKSPACE_ ones) keep the meaning users know. A bad
value raises :class:`ConfigError`, which the CLI turns into one line and exit 2.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

STORAGE_BACKENDS = ("localstorage", "s3storage", "rackspacestorage", "swiftstorage")
FILE_MISS_MODES = ("stream", "redirect")


def _pypi_simple_endpoint() -> str:
    """``pypi_simple.PYPI_SIMPLE_ENDPOINT``, read from pypi-simple's source, not imported.

    Importing pypi-simple loads pydantic, BeautifulSoup and requests (30 MB in
    every web process) and only HTML parsing needs them; its constant is one
    line of its ``__init__``. Should that line ever change shape, import it.
    """
    spec = importlib.util.find_spec("pypi_simple")
    if spec is not None and spec.origin:
        match = re.search(r'^PYPI_SIMPLE_ENDPOINT(?:\s*:\s*str)?\s*=\s*"([^"]+)"',
                          Path(spec.origin).read_text(), re.M)
        if match:
            return match.group(1)
    from pypi_simple import PYPI_SIMPLE_ENDPOINT

    return PYPI_SIMPLE_ENDPOINT


PYPI_SIMPLE_ENDPOINT = _pypi_simple_endpoint()
RACKSPACE_IDENTITY_URL = "https://identity.api.rackspacecloud.com/v2.0/"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}={raw!r}: expected true or false")


def _int(name: str, raw: str, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and {maximum}" if maximum is not None else ""
        raise ConfigError(f"{name}={raw!r}: expected a number between {minimum}{upper}")
    return value


def _float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r}: expected a positive number of seconds")
    return value


_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(name: str, raw: str) -> int:
    """Parse ``50GB``, ``100MiB`` or a plain byte count."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", raw)
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise ConfigError(f"{name}={raw!r}: expected a size such as 500MB or 50GB")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(name: str, raw: str) -> timedelta:
    """Parse ``3d``, ``12h``, ``90m``, ``1w`` or plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", raw.lower())
    if not match:
        raise ConfigError(f"{name}={raw!r}: expected a duration such as 12h or 3d")
    return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"])


def _names(raw: str) -> frozenset[str]:
    from packaging.utils import canonicalize_name

    return frozenset(canonicalize_name(n) for n in re.split(r"[,\s]+", raw) if n)


def _patterns(name: str, raw: str) -> tuple[str, ...]:
    from havarti.distributions import patterns
    from havarti.errors import InvalidRequest

    try:
        return tuple(p.text for p in patterns(re.split(r"[,\s]+", raw)))
    except InvalidRequest as exc:
        raise ConfigError(f"{name}={raw!r}: {exc}") from None


def _url(name: str, raw: str) -> str:
    if not re.match(r"^https?://[^/\s]+", raw.strip()):
        raise ConfigError(f"{name}={raw!r}: expected an http:// or https:// URL")
    return raw.strip()


def _choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
        return value

    return parse


#: Database URL schemes Havarti runs on (SQLAlchemy dialect[+driver]); psycopg 3 for Postgres.
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "postgres")


def _db_uri(name: str, raw: str) -> str:
    """SQLite or PostgreSQL, also in the ``postgres://`` form PaaS hand out; psycopg 3 is
    the driver. Any other database is refused by name before a driver is looked for."""
    uri = raw.strip()
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix):]
    match = re.match(r"^([a-z][a-z0-9+.-]*)://", uri, re.I)
    if not match:
        raise ConfigError(f"{name}={raw!r}: expected a database URL such as postgresql://user@host/db")
    if match.group(1).lower() not in DATABASE_SCHEMES:
        # The scheme only: the rest of the URL may hold a password.
        raise ConfigError(f"{name}: {match.group(1)}:// databases are not supported: only SQLite "
                          "and PostgreSQL are supported (sqlite:////path/havarti.db or "
                          "postgresql://user@host/db)")
    return uri


def _redis_uri(name: str, raw: str) -> str:
    if not re.match(r"^rediss?://", raw.strip()):
        raise ConfigError(f"{name}={raw!r}: expected a redis:// URL")
    return raw.strip()


def _path(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


def _str(name: str, raw: str) -> str:
    return raw


#: UPSTREAM_FILE_HOSTS's "any host".
ANY_HOST = "*"


def parse_hosts(raw: str) -> frozenset[str]:
    """``UPSTREAM_FILE_HOSTS``: host or host:port entries, or ``*``; ValueError saying why."""
    import httpx  # at parse time only: importing the settings stays cheap

    hosts = set()
    for entry in raw.replace(",", " ").split():
        entry = entry.strip().lower().rstrip(".")
        if entry == ANY_HOST:
            hosts.add(ANY_HOST)
            continue
        if "/" in entry or "@" in entry or "?" in entry or "#" in entry:
            raise ValueError(f"{entry!r} is not a host (write files.example.org or host:port, "
                             "no scheme or path)")
        try:
            url = httpx.URL(f"http://{entry}/")
        except httpx.InvalidURL as exc:
            raise ValueError(f"{entry!r} is not a host: {exc}") from None
        if not url.host:
            raise ValueError(f"{entry!r} is not a host")
        hosts.add(f"{url.host}:{url.port}" if url.port is not None else url.host)
    if not hosts:
        raise ValueError("no host given (use * to allow any host)")
    return frozenset(hosts)



def _hosts(name: str, raw: str) -> frozenset[str]:
    try:
        return parse_hosts(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r}: {exc}") from None


def _rate(name: str, raw: str) -> int:
    value = parse_size(name, raw.strip().removesuffix("/s"))
    if value <= 0:
        raise ConfigError(f"{name}={raw!r}: expected a positive rate such as 50kB (per second)")
    return value


def setting(env: str | tuple[str, ...], default: Any = None, parse: Callable[[str, str], Any] = _str,
            doc: str = "") -> Any:
    names = (env,) if isinstance(env, str) else env
    return field(default=default, metadata={"env": names, "parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """Every setting; field metadata names the environment variables (first wins)."""

    port: int = setting("PORT", 8080, lambda n, r: _int(n, r, 1, 65535), "TCP port to listen on")
    host: str = setting("HOST", "0.0.0.0", doc="address to bind")
    workers: int = setting("WEB_CONCURRENCY", 2, lambda n, r: _int(n, r, 1, 64),
                           "web worker processes for `havarti serve`")
    threads: int = setting("WEB_THREADS", 16, lambda n, r: _int(n, r, 1, 256),
                           "threads per web worker")
    web_server: str = setting("WEB_SERVER", "gunicorn", _choice(("gunicorn", "granian")),
                              "`havarti serve`'s HTTP server: gunicorn (guarded against slow "
                              "clients) or granian (faster; for behind a proxy that bounds clients)")
    # Slow and greedy clients (havarti/worker.py): gunicorn's worker for both command lines.
    header_timeout: float = setting("HEADER_TIMEOUT", 10.0, _float,
                                    "seconds a request's head (request line and headers) may take")
    body_timeout: float = setting("BODY_TIMEOUT", 30.0, _float,
                                  "seconds a request body or a response may go without progress")
    max_client_connections: int = setting("MAX_CLIENT_CONNECTIONS", 100, _int,
                                          "connections one client address may hold per web worker (0: no bound)")
    passcode: str | None = setting("PASSCODE", None, doc="upload passcode (basic-auth password)")
    storage: str = setting("STORAGE", "localstorage", _choice(STORAGE_BACKENDS), "storage backend")
    package_cache: Path = setting("PACKAGE_CACHE", Path("~/.havarti-packages").expanduser(), _path,
                                  "data directory: local files and the SQLite database")
    db_uri: str | None = setting(("DB_URI", "DATABASE_URL"), None, _db_uri,
                                 "database URL; default SQLite in PACKAGE_CACHE")
    redis_uri: str | None = setting(("REDIS_URI", "REDIS_URL"), None, _redis_uri,
                                    "Redis URL; set it to run jobs on Celery workers")
    job_visibility_timeout: int = setting(
        "JOB_VISIBILITY_TIMEOUT", 600, lambda n, r: _int(n, r, 1),
        "seconds before a job whose downloader died (SIGKILL, lost machine) goes to another")
    debug: bool = setting("DEBUG", False, _bool, "verbose logs")
    #: The upstream index Havarti mirrors (env FALLBACK, the seed's name for it).
    primary_upstream: str = setting("FALLBACK", PYPI_SIMPLE_ENDPOINT, _url, "upstream simple index URL")
    public_url: str | None = setting("PUBLIC_URL", None, _url,
                                     "URL users reach Havarti at, for every absolute URL it writes")
    read_auth: bool = setting("READ_AUTH", False, _bool, "require the passcode to read too")
    trusted_proxies: int = setting(
        "TRUSTED_PROXIES", 0, lambda n, r: _int(n, r, 0, 16),
        "proxies in front of Havarti whose X-Forwarded-For / -Proto are believed (Heroku: 1)")
    max_upload_size: int = setting("MAX_UPLOAD_SIZE", 100 * 10**6, parse_size,
                                   "largest accepted upload")
    upstream_timeout: float = setting("UPSTREAM_TIMEOUT", 10.0, _float,
                                      "connect/read timeout for upstream, seconds")
    upstream_file_hosts: frozenset[str] | None = setting(
        "UPSTREAM_FILE_HOSTS", None, _hosts,
        "hosts files may come from besides FALLBACK's (host or host:port, comma-separated; * any)")
    upstream_min_rate: int = setting("UPSTREAM_MIN_RATE", 50_000, _rate,
                                     "slowest upstream file stream accepted, bytes per second")
    max_file_size: int = setting("MAX_FILE_SIZE", 5 * 10**9, parse_size,
                                 "largest upstream file fetched and cached")
    index_ttl: int = setting("INDEX_TTL", 0, _int,
                             "seconds an upstream page is trusted without revalidating")
    revalidate_wait: float = setting(
        "REVALIDATE_WAIT", 2.0, _float,
        "seconds a page request waits for upstream's answer before getting the stored page")
    not_found_ttl: float = setting("NOT_FOUND_TTL", 10.0, _float,
                                   "seconds a project upstream does not have is remembered missing")
    breaker_failures: int = setting(
        "UPSTREAM_BREAKER_FAILURES", 5, lambda n, r: _int(n, r, 0),
        "consecutive upstream failures that open the circuit breaker (0: never)")
    breaker_seconds: float = setting("UPSTREAM_BREAKER_SECONDS", 30.0, _float,
                                     "seconds the breaker stays open before one probe")
    page_deadline: float = setting("PAGE_DEADLINE", 30.0, _float,
                                   "total seconds upstream may take to send one project page")
    max_upstream_page: int = setting("MAX_UPSTREAM_PAGE", 50 * 2**20, parse_size,
                                     "largest upstream project page accepted")
    page_cache_mb: int = setting("PAGE_CACHE_MB", 64, lambda n, r: _int(n, r, 1),
                                 "memory for cached pages per web process, MB")
    upstream_merge: frozenset[str] = setting("UPSTREAM_MERGE", frozenset(), lambda n, r: _names(r),
                                             "projects whose upstream files are merged with private ones")
    file_miss: str = setting("FILE_MISS", "stream", _choice(FILE_MISS_MODES),
                             "stream (tee to client and storage) or redirect (302 + background download)")
    cooldown: timedelta | None = setting("COOLDOWN", None, parse_duration,
                                         "hide upstream files younger than this (e.g. 3d)")
    cooldown_exempt: frozenset[str] = setting("COOLDOWN_EXEMPT", frozenset(),
                                              lambda n, r: _names(r), "projects exempt from COOLDOWN")
    reserved_names: tuple[str, ...] = setting(
        "RESERVED_NAMES", (), lambda n, r: _patterns(n, r),
        "names or prefixes (acme-*) served only from private uploads, never asked of upstream")
    policy_file: Path | None = setting("POLICY_FILE", None, _path,
                                       "TOML file of deny/allow rules for upstream files (see Access)")
    cache_max_size: int | None = setting("CACHE_MAX_SIZE", None, parse_size,
                                         "bound on cached upstream files; least recently served evicted")
    # S3
    s3_access_key: str | None = setting("S3_ACCESS_KEY", None, doc="S3 access key")
    s3_secret_key: str | None = setting("S3_SECRET_KEY", None, doc="S3 secret key")
    s3_bucket: str | None = setting("S3_BUCKET", None, doc="S3 bucket")
    s3_region: str | None = setting("S3_REGION", None, doc="S3 region")
    s3_endpoint_url: str | None = setting("S3_ENDPOINT_URL", None, _url,
                                          "S3-compatible endpoint (MinIO, Ceph, R2, Swift s3api)")
    s3_prefix: str = setting("S3_PREFIX", "", doc="key prefix inside the bucket")
    s3_redirect: bool = setting("S3_REDIRECT", True, _bool,
                                "redirect downloads to presigned URLs (false: stream through)")
    # Rackspace Cloud Files
    rackspace_username: str | None = setting("RACKSPACE_USERNAME", None, doc="Rackspace username")
    rackspace_key: str | None = setting("RACKSPACE_KEY", None, doc="Rackspace API key")
    rackspace_container: str | None = setting("RACKSPACE_CONTAINER", None, doc="Cloud Files container")
    rackspace_region: str = setting("RACKSPACE_REGION", "DFW", lambda n, r: r.strip().upper(),
                                    "Cloud Files region")
    rackspace_identity_url: str = setting("RACKSPACE_IDENTITY_URL", RACKSPACE_IDENTITY_URL, _url,
                                          "Rackspace identity endpoint")
    rackspace_temp_url_key: str | None = setting("RACKSPACE_TEMP_URL_KEY", None,
                                                 doc="temp-URL key: redirect downloads")
    # OpenStack Swift
    swift_auth_url: str | None = setting("SWIFT_AUTH_URL", None, _url, "Swift auth URL")
    swift_auth_version: str = setting("SWIFT_AUTH_VERSION", "1", _choice(("1", "2", "3")),
                                      "Swift auth version")
    swift_user: str | None = setting("SWIFT_USER", None, doc="Swift user")
    swift_key: str | None = setting("SWIFT_KEY", None, doc="Swift key / password")
    swift_container: str | None = setting("SWIFT_CONTAINER", None, doc="Swift container")
    swift_project: str | None = setting("SWIFT_PROJECT", None, doc="Keystone v3 project name")
    swift_project_domain: str = setting("SWIFT_PROJECT_DOMAIN", "default",
                                        doc="Keystone v3 project domain")
    swift_user_domain: str = setting("SWIFT_USER_DOMAIN", "default", doc="Keystone v3 user domain")
    swift_region: str | None = setting("SWIFT_REGION", None, doc="Keystone region")
    swift_temp_url_key: str | None = setting("SWIFT_TEMP_URL_KEY", None,
                                             doc="temp-URL key: redirect downloads")

    @property
    def database_url(self) -> str:
        return self.db_uri or f"sqlite:///{self.package_cache / 'havarti.db'}"

    def base_url(self, request_url: str | None = None) -> str:
        """Where users reach Havarti, without a trailing slash: the one rule for absolute URLs.

        PUBLIC_URL when set; else the URL a request came to (``request_url``, built from
        its Host header); else, with no request at hand, the address Havarti binds.
        """
        if self.public_url:
            return self.public_url.rstrip("/")
        if request_url:
            return request_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_REQUIRED = {
    "s3storage": ("S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET"),
    "rackspacestorage": ("RACKSPACE_USERNAME", "RACKSPACE_KEY", "RACKSPACE_CONTAINER"),
    "swiftstorage": ("SWIFT_AUTH_URL", "SWIFT_USER", "SWIFT_KEY", "SWIFT_CONTAINER"),
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        for name in f.metadata["env"]:
            raw = env.get(name)
            if raw is not None and raw != "":
                values[f.name] = f.metadata["parse"](name, raw)
                break
    settings = Settings(**values)
    for name in _REQUIRED.get(settings.storage, ()):
        attr = name.lower()
        if not getattr(settings, attr):
            raise ConfigError(f"{name} is not set: STORAGE={settings.storage} needs it")
    if settings.read_auth and not settings.passcode:
        raise ConfigError("PASSCODE is not set: READ_AUTH=true needs it (readers send it)")
    if settings.storage == "swiftstorage" and settings.swift_auth_version == "3" and not settings.swift_project:
        raise ConfigError("SWIFT_PROJECT is not set: SWIFT_AUTH_VERSION=3 needs it")
    return settings


def describe() -> list[tuple[str, str, str]]:
    """(variables, default, meaning) rows, for the README's configuration table."""
    rows = []
    for f in fields(Settings):
        default = f.default
        rows.append((" / ".join(f.metadata["env"]), "" if default is None else str(default),
                     f.metadata["doc"]))
    return rows
