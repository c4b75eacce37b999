"""The ``havarti`` command: serve, db upgrade, check, and the operator's tools."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from havarti.config import ConfigError, Settings, load_settings


def fail(message: str) -> NoReturn:
    """One line on stderr, exit code 2: how every CLI refusal ends."""
    click.echo(f"havarti: {message}", err=True)
    sys.exit(2)


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(f"configuration error: {exc}")
    return settings.with_changes(**{k: v for k, v in overrides.items() if v is not None})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="havarti")
def main() -> None:
    """Havarti: a private package index and caching proxy for PyPI."""


def banner(settings: Settings) -> str:
    url = settings.base_url
    host = url.split("://", 1)[1].split("/", 1)[0].split(":")[0]
    return f"""Havarti is serving at {url}/
  storage: {settings.storage}   database: {settings.database_url.split('@')[-1]}   upstream: {settings.fallback}

  pip:    pip install -i {url}/simple/ <package>
          (pip.conf)  [global]  index-url = {url}/simple/   trusted-host = {host}
  uv:     uv pip install --index-url {url}/simple/ <package>
          (uv.toml)   [[index]]  url = "{url}/simple/"  default = true
  poetry: poetry source add --priority=primary havarti {url}/simple/
  twine:  twine upload --repository-url {url}/ -u havarti -p "$PASSCODE" dist/*
  uv:     uv publish --publish-url {url}/ -u havarti -p "$PASSCODE" dist/*
"""


@main.command()
@click.option("--host", help="Address to bind [env HOST, default 0.0.0.0].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [env PORT, default 8080].")
@click.option("--workers", type=click.IntRange(1, 64),
              help="Web worker processes [env WEB_CONCURRENCY, default 2].")
@click.option("--threads", type=click.IntRange(1, 256),
              help="Threads per worker [env WEB_THREADS, default 16].")
def serve(host: str | None, port: int | None, workers: int | None, threads: int | None) -> None:
    """Serve the index with gunicorn (threads), migrating the database first.

    With no environment at all this is the embedded default: SQLite and files
    under PACKAGE_CACHE (~/.havarti-packages), PyPI upstream, jobs in-process.
    """
    from havarti.server import run

    settings = settings_or_exit(host=host, port=port, workers=workers, threads=threads)
    prepare_or_exit(settings)
    click.echo(banner(settings))
    run(settings)


def prepare_or_exit(settings: Settings) -> None:
    from havarti.storage import StorageError
    from havarti.wiring import prepare

    try:
        for line in prepare(settings):
            click.echo(f"havarti: {line}", err=True)
    except StorageError as exc:
        fail(f"storage: {exc}")
    except Exception as exc:  # noqa: BLE001 -- database drivers raise many types
        fail(f"start-up failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every database migration (also done by `serve` at start)."""
    from havarti.db import Database

    settings = settings_or_exit()
    database = Database(settings.database_url)
    try:
        database.upgrade()
    except Exception as exc:  # noqa: BLE001
        fail(f"database: {exc}")
    click.echo("database is up to date")


Check = Callable[[Settings], str]


@main.command()
def check() -> None:
    """Verify configuration, database, storage, broker and upstream: one line each."""
    from havarti.checks import run_checks

    settings = settings_or_exit()
    ok = True
    for name, passed, detail in run_checks(settings):
        mark = "ok  " if passed else "FAIL"
        click.echo(f"{mark} {name}: {detail}")
        ok = ok and passed
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
