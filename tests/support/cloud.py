"""The cloud storage backends under test: the local Swift (Swift API and S3 API) and a
Rackspace identity endpoint in front of it.

scripts/swift-saio.sh starts Swift; scripts/services.sh writes its settings to
tests/services.env as ``HAVARTI_TEST_SWIFT_*`` / ``HAVARTI_TEST_S3_*``. Each test gets
a bucket/container of its own (``t-<random>``), emptied and deleted afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from havarti.config import load_settings
from havarti.storage import Storage, StorageError, make_storage
from tests.support.services import service_setting, unavailable

#: HAVARTI_TEST_STORAGE values that need the local Swift.
CLOUD_BACKENDS = ("s3storage", "swiftstorage", "rackspacestorage")


def swift_settings() -> dict[str, str]:
    """The local Swift's URLs and keys; skip (fail under CI) if it is not running."""
    keys = ("SWIFT_AUTH_URL", "SWIFT_USER", "SWIFT_KEY", "SWIFT_TEMPURL_KEY",
            "S3_ENDPOINT_URL", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_REGION")
    values = {k: service_setting("HAVARTI_TEST_" + k) for k in keys}
    missing = [k for k, v in values.items() if not v]
    if missing:
        unavailable(f"local Swift not configured (no HAVARTI_TEST_{missing[0]} in "
                    "tests/services.env; run scripts/services.sh)")
    found = {k: str(v) for k, v in values.items()}
    try:
        urllib.request.urlopen(found["S3_ENDPOINT_URL"] + "/healthcheck", timeout=3).read()
    except OSError as exc:
        unavailable(f"local Swift at {found['S3_ENDPOINT_URL']} is not answering: {exc}")
    return found


class RackspaceIdentity:
    """Answers like Rackspace Identity v2.0 (POST /v2.0/tokens with RAX-KSKEY
    apiKeyCredentials), logging in to the local Swift with the same username and key.

    The catalog lists Cloud Files in two regions: ``DFW`` is the local Swift,
    ``ORD`` an address nothing listens on, so picking the wrong region fails.
    ``expire_next`` hands out one token Swift will refuse, as an expired one would be.
    """

    def __init__(self, swift_auth_url: str) -> None:
        self.swift_auth_url = swift_auth_url
        self.logins = 0
        self.refused = 0
        self.expire_next = False
        identity = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                status, answer = identity.answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v2.0/"

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        credentials = body.get("auth", {}).get("RAX-KSKEY:apiKeyCredentials")
        if path.rstrip("/") != "/v2.0/tokens" or not credentials:
            return 400, {"badRequest": {"code": 400,
                                        "message": "expected RAX-KSKEY:apiKeyCredentials"}}
        request = urllib.request.Request(self.swift_auth_url, headers={
            "X-Auth-User": credentials.get("username", ""),
            "X-Auth-Key": credentials.get("apiKey", "")})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                storage_url = response.headers["X-Storage-Url"]
                token = response.headers["X-Auth-Token"]
        except urllib.error.HTTPError:
            self.refused += 1
            return 401, {"unauthorized": {"code": 401,
                                          "message": "Username or api key is invalid."}}
        self.logins += 1
        if self.expire_next:
            self.expire_next = False
            token = "AUTH_tk" + "0" * 32
        tenant = storage_url.rsplit("/", 1)[1]
        dead = "http://127.0.0.1:9/v1/" + tenant

        def endpoints(local: str) -> list[dict[str, str]]:
            return [{"region": "ORD", "tenantId": tenant, "publicURL": dead, "internalURL": dead},
                    {"region": "DFW", "tenantId": tenant, "publicURL": local,
                     "internalURL": local}]

        return 200, {"access": {
            "token": {"id": token, "expires": "2099-01-01T00:00:00.000Z",
                      "tenant": {"id": tenant, "name": tenant}},
            "user": {"id": "1", "name": credentials["username"],
                     "RAX-AUTH:defaultRegion": "DFW", "roles": []},
            "serviceCatalog": [
                {"name": "cloudServersOpenStack", "type": "compute", "endpoints": []},
                {"name": "cloudFilesCDN", "type": "rax:object-cdn", "endpoints": endpoints(dead)},
                {"name": "cloudFiles", "type": "object-store", "endpoints": endpoints(storage_url)},
            ]}}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def backend_env(backend: str, swift: dict[str, str], identity: RackspaceIdentity | None = None,
                redirect: bool = True) -> dict[str, str]:
    """Havarti's environment for ``backend`` on the local Swift, with a fresh bucket/container.

    ``redirect``: downloads go to presigned / temp URLs; False streams them through Havarti.
    """
    name = f"t-{secrets.token_hex(6)}"
    if backend == "s3storage":
        return {"STORAGE": backend, "S3_ENDPOINT_URL": swift["S3_ENDPOINT_URL"],
                "S3_ACCESS_KEY": swift["S3_ACCESS_KEY"], "S3_SECRET_KEY": swift["S3_SECRET_KEY"],
                "S3_REGION": swift["S3_REGION"], "S3_BUCKET": name,
                "S3_REDIRECT": str(redirect).lower()}
    temp_url_key = {"TEMP_URL_KEY": swift["SWIFT_TEMPURL_KEY"]} if redirect else {}
    if backend == "swiftstorage":
        return {"STORAGE": backend, "SWIFT_AUTH_URL": swift["SWIFT_AUTH_URL"],
                "SWIFT_USER": swift["SWIFT_USER"], "SWIFT_KEY": swift["SWIFT_KEY"],
                "SWIFT_CONTAINER": name, **{"SWIFT_" + k: v for k, v in temp_url_key.items()}}
    if backend == "rackspacestorage":
        assert identity is not None
        return {"STORAGE": backend, "RACKSPACE_USERNAME": swift["SWIFT_USER"],
                "RACKSPACE_KEY": swift["SWIFT_KEY"], "RACKSPACE_CONTAINER": name,
                "RACKSPACE_REGION": "DFW", "RACKSPACE_IDENTITY_URL": identity.url,
                **{"RACKSPACE_" + k: v for k, v in temp_url_key.items()}}
    raise ValueError(backend)


def storage_for(env: dict[str, str]) -> Storage:
    return make_storage(load_settings(env))


def empty_and_remove(env: dict[str, str]) -> None:
    """Delete every object, then the bucket/container (a non-empty one cannot be deleted)."""
    storage = storage_for(env)
    for key, _ in list(storage.list()):
        storage.delete(key)
    if env["STORAGE"] == "s3storage":
        storage.client.delete_bucket(Bucket=storage.bucket)  # type: ignore[attr-defined]
    else:
        storage._conn().delete_container(storage.container)  # type: ignore[attr-defined]


# The e2e suite on a cloud backend: HAVARTI_TEST_STORAGE=s3storage|swiftstorage|rackspacestorage
# gives every server the tests start (unless it sets STORAGE itself) a fresh bucket/container
# on the local Swift; they are emptied and removed when the session ends.

_identity: RackspaceIdentity | None = None
#: data dir of a server -> the storage environment it was given.
SERVER_STORAGE: dict[str, dict[str, str]] = {}


def test_storage_env(data_dir: Path, redirect: bool = False) -> dict[str, str]:
    """The storage settings for a server on ``data_dir``: {} means the default localstorage.

    ``redirect``: stored files are answered with presigned / temp-URL redirects, as the
    cloud backends do by default (the suite's plain HTTP GETs want them streamed through).
    """
    global _identity
    backend = os.environ.get("HAVARTI_TEST_STORAGE", "") or "localstorage"
    if backend == "localstorage":
        return {}
    if backend not in CLOUD_BACKENDS:
        raise ValueError(f"HAVARTI_TEST_STORAGE={backend!r}: expected localstorage or one of "
                         f"{', '.join(CLOUD_BACKENDS)}")
    key = str(data_dir)
    if key not in SERVER_STORAGE:
        swift = swift_settings()
        if backend == "rackspacestorage" and _identity is None:
            _identity = RackspaceIdentity(swift["SWIFT_AUTH_URL"])
        # The suite reads files back with plain HTTP GETs, so bytes stream through Havarti;
        # tests/e2e/test_storage_backends.py covers the redirects with pip and uv.
        SERVER_STORAGE[key] = backend_env(backend, swift, _identity, redirect=redirect)
    return SERVER_STORAGE[key]


def stored_in_cloud(data_dir: Path) -> dict[str, bytes] | None:
    """Every object of the server on ``data_dir`` (key -> bytes), or None on local storage."""
    env = SERVER_STORAGE.get(str(data_dir))
    if env is None:
        return None
    storage = storage_for(env)
    try:
        return {key: storage.read_bytes(key) for key, _ in storage.list()}
    except StorageError:  # not created yet: the server never started
        return {}


def remove_test_storage() -> None:
    for env in SERVER_STORAGE.values():
        try:
            empty_and_remove(env)
        except Exception:  # noqa: BLE001 -- best effort: a container never created
            pass
    SERVER_STORAGE.clear()


@dataclass(frozen=True)
class CloudObject:
    """An object in the test bucket/container, read like a local file's Path."""

    key: str
    env: dict[str, str]

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def read_bytes(self) -> bytes:
        return storage_for(self.env).read_bytes(self.key)


def cloud_objects_named(data_dir: Path, filename: str) -> list[CloudObject] | None:
    """Objects named ``filename`` of the server on ``data_dir``, or None on local storage."""
    env = SERVER_STORAGE.get(str(data_dir))
    if env is None:
        return None
    try:
        keys = [key for key, _ in storage_for(env).list() if key.rsplit("/", 1)[-1] == filename]
    except StorageError:
        return []
    return [CloudObject(key, env) for key in keys]


class TcpRelay:
    """A loopback TCP relay to a service, which a test can take down to cause an outage."""

    def __init__(self, target: str) -> None:
        parts = urllib.parse.urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.port = 0
        self.listener: socket.socket | None = None
        self.open: list[socket.socket] = []
        self.guard = threading.Lock()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def up(self) -> TcpRelay:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        with self.guard:
            sockets, self.open = self.open, []
            if self.listener is not None:
                sockets.append(self.listener)
                self.listener = None
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.guard:
                self.open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def server_storage_env(data_dir: Path) -> dict[str, str]:
    """The storage settings a test server on ``data_dir`` runs with ({} = localstorage)."""
    return dict(SERVER_STORAGE.get(str(data_dir), {}))
