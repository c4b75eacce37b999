"""The Flask app in-process on a fresh SQLite database, for fast web-layer tests."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from havarti.config import load_settings
from havarti.db import Database
from havarti.domain.index import PackageIndex
from havarti.wiring import prepare
from tests.support.dists import Dist


def basic_auth(password: str, username: str = "havarti") -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class WebApp:
    app: Flask
    client: FlaskClient
    passcode: str | None

    @property
    def index(self) -> PackageIndex:
        return self.app.extensions["havarti"].get()

    @cached_property
    def db(self) -> Database:
        """The app's database, for tests that look at rows."""
        return Database(self.index.settings.database_url)

    @property
    def auth(self) -> dict[str, str]:
        assert self.passcode
        return basic_auth(self.passcode)

    def upload(self, dist: Dist, name: str | None = None) -> None:
        """Upload through the real upload endpoint, as twine would."""
        project = name or dist.filename.split("-")[0]
        response = self.client.post("/", headers=self.auth, data={
            ":action": "file_upload", "name": project,
            "version": dist.filename.split("-")[1].removesuffix(".tar.gz"),
            "sha256_digest": dist.sha256, "content": (io.BytesIO(dist.data), dist.filename)})
        assert response.status_code == 200, response.text


    def download(self, path: str) -> bytes:
        """GET a file to its end, and wait until a miss is stored (that follows the client's last byte)."""
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        data = response.get_data()
        response.close()
        assert self.index.fetcher.wait(10)
        return data


def make_webapp(data_dir: Path, upstream_url: str = "http://127.0.0.1:9/simple/",
                passcode: str | None = "s3cret", **env: str) -> WebApp:
    from havarti.web import create_app

    environ = {"PACKAGE_CACHE": str(data_dir), "FALLBACK": upstream_url, "UPSTREAM_TIMEOUT": "2",
               **env}
    if passcode:
        environ["PASSCODE"] = passcode
    settings = load_settings(environ)
    prepare(settings)
    app = create_app(settings)
    app.config["TESTING"] = True
    return WebApp(app, app.test_client(), passcode)
