"""swiftstorage and rackspacestorage: objects in an OpenStack Swift container.

Rackspace Cloud Files is Swift behind Rackspace's identity service, so both
backends are this one class; only the login differs (:class:`SharedAuth`).

A Swift PUT is atomic: the object server commits an object only once the whole
body has arrived, and a body that stops early (our stream raised, so the chunked
request is never finished) is thrown away. Two writers of one key leave the
last complete upload.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from swiftclient.client import ClientException, Connection
from swiftclient.client import get_auth as swift_get_auth
from swiftclient.utils import generate_temp_url

from havarti.config import Settings
from havarti.storage import ObjectNotFound, Storage, StorageError
from havarti.storage.base import CHUNK, Drain, Readable, StoredObject

#: Re-login this long before Rackspace says the token expires.
EXPIRY_MARGIN = 300

Login = Callable[[], tuple[str, str, float | None]]


class SharedAuth:
    """One token for every thread's connection; logs in again when it expires or is refused."""

    def __init__(self, login: Login, describe: str) -> None:
        self._login = login
        self.describe = describe
        self._guard = threading.Lock()
        self._url: str | None = None
        self._token: str | None = None
        self._expires: float | None = None
        self.logins = 0

    def get(self, refused: str | None = None) -> tuple[str, str]:
        """The storage URL and a token; ``refused`` is a token Swift just answered 401 to."""
        with self._guard:
            fresh = self._token is not None and self._token != refused and (
                self._expires is None or time.time() < self._expires - EXPIRY_MARGIN)
            if not fresh:
                self._url, self._token, self._expires = self._login()
                self.logins += 1
            assert self._url is not None and self._token is not None
            return self._url, self._token

    @property
    def storage_url(self) -> str:
        return self.get()[0]


class _Connection(Connection):
    """swiftclient's connection, logging in through :class:`SharedAuth`.

    swiftclient already retries a request once after a 401, calling ``get_auth``.
    """

    def __init__(self, auth: SharedAuth, timeout: float) -> None:
        # authurl/user/key only tell swiftclient that re-authenticating is possible.
        super().__init__(authurl=auth.describe, user="-", key="-", retries=2,
                         starting_backoff=0.5, max_backoff=2, timeout=timeout)
        self.shared = auth
        self._last: str | None = None

    def get_auth(self) -> tuple[str, str]:
        url, token = self.shared.get(refused=self._last)
        self._last = token
        return url, token


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


class SwiftStorage(Storage):
    def __init__(self, auth: SharedAuth, container: str, temp_url_key: str | None = None,
                 name: str = "swiftstorage", timeout: float = 30) -> None:
        self.auth = auth
        self.container = container
        self.temp_url_key = temp_url_key
        self.name = name
        self.timeout = timeout
        self._local = threading.local()

    # Construction from settings

    @classmethod
    def openstack(cls, settings: Settings) -> SwiftStorage:
        """Any OpenStack Swift: tempauth (v1) or Keystone v2/v3 via SWIFT_AUTH_URL."""
        assert settings.swift_auth_url and settings.swift_user and settings.swift_key
        assert settings.swift_container
        auth_url, user, key = settings.swift_auth_url, settings.swift_user, settings.swift_key
        version = settings.swift_auth_version
        if version != "1" and importlib.util.find_spec("keystoneclient") is None:
            # python-swiftclient speaks Keystone through python-keystoneclient.
            raise StorageError(f"SWIFT_AUTH_VERSION={version} (Keystone) needs python-keystoneclient: "
                               "pip install 'havarti[keystone]'")
        options: dict[str, Any] = {}
        if settings.swift_region:
            options["region_name"] = settings.swift_region
        if version == "3":
            options.update(project_name=settings.swift_project,
                           project_domain_name=settings.swift_project_domain,
                           user_domain_name=settings.swift_user_domain)
        elif version == "2" and settings.swift_project:
            options["tenant_name"] = settings.swift_project

        def login() -> tuple[str, str, float | None]:
            try:
                url, token = swift_get_auth(auth_url, user, key, auth_version=version,
                                            os_options=dict(options), timeout=10)
            except ClientException as exc:
                if exc.http_status in (401, 403):
                    raise StorageError(f"Swift refused the login of SWIFT_USER={user!r} at "
                                       f"{auth_url}: check SWIFT_USER and SWIFT_KEY") from None
                raise StorageError(f"Swift login at {auth_url} failed: {_one_line(exc)}") from None
            except Exception as exc:  # noqa: BLE001 -- requests/keystoneauth raise many types
                raise StorageError(f"cannot reach Swift at {auth_url}: {_one_line(exc)}") from None
            return url, token, None

        return cls(SharedAuth(login, auth_url), settings.swift_container,
                   settings.swift_temp_url_key, "swiftstorage")

    @classmethod
    def rackspace(cls, settings: Settings) -> SwiftStorage:
        """Rackspace Cloud Files: API-key login, the region's endpoint from the catalog."""
        assert settings.rackspace_username and settings.rackspace_key
        assert settings.rackspace_container
        login = rackspace_login(settings.rackspace_identity_url, settings.rackspace_username,
                                settings.rackspace_key, settings.rackspace_region)
        return cls(SharedAuth(login, settings.rackspace_identity_url),
                   settings.rackspace_container, settings.rackspace_temp_url_key,
                   "rackspacestorage")

    # Connections: swiftclient's are not thread-safe, so one per thread.

    def _conn(self) -> _Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _Connection(self.auth, self.timeout)
        return conn

    def _error(self, exc: Exception, key: str | None = None) -> StorageError:
        if isinstance(exc, StorageError):
            return exc
        status = getattr(exc, "http_status", None)
        if status == 404:
            if key is not None:
                return ObjectNotFound(key)
            return StorageError(f"{self.name}: container {self.container!r} does not exist")
        if status in (401, 403):
            return StorageError(f"{self.name}: access to container {self.container!r} refused "
                                f"({status}): check the credentials")
        if status is not None:
            return StorageError(f"{self.name}: Swift answered {status} "
                                f"{getattr(exc, 'http_reason', '') or ''}".rstrip())
        return StorageError(f"{self.name}: cannot reach Swift: {_one_line(exc)}")

    # The interface

    def write(self, key: str, stream: Readable, size: int | None = None) -> int:
        conn = self._conn()
        reader = Drain(stream)
        try:
            # A cheap request first: an expired token is renewed here, because a PUT whose
            # body is a stream cannot be retried once swiftclient has read from it.
            conn.head_container(self.container)
            conn.put_object(self.container, key, reader.chunks(),
                            content_type="application/octet-stream")
        except (ClientException, OSError) as exc:
            if reader.error is not None:
                raise reader.error from None
            raise self._error(exc) from None
        except Exception as exc:
            raise reader.error or exc from None
        return reader.count

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            _, body = self._conn().get_object(self.container, key, resp_chunk_size=CHUNK,
                                              headers=headers)
        except ClientException as exc:
            if exc.http_status == 416:
                return iter(())
            raise self._error(exc, key) from None
        except Exception as exc:  # noqa: BLE001 -- requests raises many types
            raise self._error(exc) from None
        return self._chunks(body)

    def _chunks(self, body: Any) -> Iterator[bytes]:
        try:
            yield from body
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def size(self, key: str) -> int:
        try:
            head = self._conn().head_object(self.container, key)
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, key) from None
        return int(head["content-length"])

    def delete(self, key: str) -> None:
        try:
            self._conn().delete_object(self.container, key)
        except Exception as exc:  # noqa: BLE001
            error = self._error(exc, key)
            if not isinstance(error, ObjectNotFound):
                raise error from None

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        marker = ""
        while True:
            try:
                _, items = self._conn().get_container(self.container, prefix=prefix,
                                                      marker=marker, limit=1000)
            except Exception as exc:  # noqa: BLE001
                raise self._error(exc) from None
            if not items:
                return
            for item in items:
                yield StoredObject(item["name"], int(item["bytes"]),
                                   _listed_time(item.get("last_modified")))
            marker = items[-1]["name"]

    def url(self, key: str, filename: str, expires: int = 300) -> str | None:
        if not self.temp_url_key:
            return None
        try:
            storage_url = self.auth.storage_url
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None
        parts = urlsplit(storage_url)
        path = f"{parts.path}/{self.container}/{key}"
        signed = generate_temp_url(path, expires, self.temp_url_key, "GET")
        query = signed.split("?", 1)[1]
        return (f"{parts.scheme}://{parts.netloc}{quote(path)}?{query}"
                f"&filename={quote(filename)}")

    def ensure_ready(self) -> str | None:
        conn = self._conn()
        try:
            conn.head_container(self.container)
            return None
        except ClientException as exc:
            if exc.http_status != 404:
                raise self._error(exc) from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None
        try:
            conn.put_container(self.container)
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None
        return f"created {self.name} container {self.container!r}"

    def check(self) -> str:
        try:
            self._conn().head_container(self.container)
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None
        redirect = ", temp-URL redirects" if self.temp_url_key else ""
        return f"{self.name} container {self.container!r} at {self.auth.storage_url}{redirect}"


def rackspace_login(identity_url: str, username: str, api_key: str, region: str) -> Login:
    """A login for Rackspace Identity v2.0 with an API key (RAX-KSKEY).

    Returns the region's Cloud Files endpoint from the service catalog, the token
    and when it expires; python-swiftclient has no such login of its own.
    """
    tokens_url = identity_url.rstrip("/") + "/tokens"

    def login() -> tuple[str, str, float | None]:
        body = {"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": username, "apiKey": api_key}}}
        try:
            response = httpx.post(tokens_url, json=body, timeout=15,
                                  headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise StorageError(f"cannot reach Rackspace identity at {tokens_url}: "
                               f"{_one_line(exc)}") from None
        if response.status_code in (401, 403):
            raise StorageError(f"Rackspace identity refused RACKSPACE_USERNAME={username!r}: "
                               "check RACKSPACE_USERNAME and RACKSPACE_KEY")
        if response.status_code != 200:
            raise StorageError(f"Rackspace identity at {tokens_url} answered "
                               f"{response.status_code}")
        try:
            access = response.json()["access"]
            token = access["token"]
            catalog = access["serviceCatalog"]
        except (ValueError, KeyError, TypeError):
            raise StorageError(f"Rackspace identity at {tokens_url} sent no token") from None
        url = _catalog_endpoint(catalog, region)
        return url, token["id"], _expiry(token.get("expires"))

    return login


def _catalog_endpoint(catalog: list[dict[str, Any]], region: str) -> str:
    regions: list[str] = []
    for service in catalog:
        if service.get("type") != "object-store" and service.get("name") != "cloudFiles":
            continue
        for endpoint in service.get("endpoints", ()):
            regions.append(str(endpoint.get("region", "")))
            if str(endpoint.get("region", "")).upper() == region.upper():
                return str(endpoint["publicURL"])
    if not regions:
        raise StorageError("the Rackspace service catalog has no Cloud Files (object-store)")
    raise StorageError(f"Cloud Files has no region RACKSPACE_REGION={region!r}; "
                       f"the account has {', '.join(sorted(set(regions)))}")


def _expiry(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC).timestamp()
    except ValueError:
        return None



def _listed_time(value: str | None) -> datetime | None:
    """A container listing's ``last_modified`` (UTC, without a zone)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        return None
