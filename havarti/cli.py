"""The ``havarti`` command: serve, db upgrade, check, and the operator's tools."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


def banner(settings: Settings, warnings: list[str] | None = None) -> str:
    """What `havarti serve` prints: where it serves, and each client's settings as lines
    and files that paste as they are (the home page shows the same, see client_config)."""
    from havarti.domain.client_config import ClientConfig

    clients = ClientConfig(settings.base_url())
    database = settings.database_url.split("@")[-1]  # never the password
    lines = [f"Havarti is serving at {clients.base}/",
             f"  storage: {settings.storage}   database: {database}   "
             f"upstream: {settings.primary_upstream}"]
    lines += [f"  {warning}" for warning in warnings or ()]
    blocks = [
        ("pip", clients.pip_line("<package>")),
        ("pip.conf (~/.config/pip/pip.conf)", clients.pip_conf),
        ("uv", clients.uv_line("<package>")),
        ("uv.toml (or [[tool.uv.index]] in pyproject.toml)", clients.uv_toml),
        ("poetry", clients.poetry_line),
        ("twine and uv publish", f"{clients.twine_line}\n{clients.uv_publish_line}"),
    ]
    for title, text in blocks:
        lines += ["", f"{title}:", text]
    return "\n".join(lines) + "\n"


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
    from havarti.checks import unreachable_at_start
    from havarti.server import exec_serve

    settings = settings_or_exit(host=host, port=port, workers=workers, threads=threads)
    prepare_or_exit(settings)
    click.echo(banner(settings, unreachable_at_start(settings)))
    exec_serve(settings)


def prepare_or_exit(settings: Settings) -> None:
    from havarti.application import startup_failure
    from havarti.wiring import prepare

    try:
        for line in prepare(settings):
            click.echo(f"havarti: {line}", err=True)
    except Exception as exc:  # noqa: BLE001 -- database drivers raise many types
        fail(startup_failure(exc))


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every database migration (also done by `serve` at start)."""
    from havarti.application import startup_failure
    from havarti.db import Database

    settings = settings_or_exit()
    database = Database(settings.database_url)
    try:
        database.upgrade()
    except Exception as exc:  # noqa: BLE001
        fail(startup_failure(exc))
    click.echo("database is up to date")


@main.command()
def check() -> None:
    """Verify configuration, database, storage, broker, upstream and downloaders: one line each."""
    from havarti.checks import run_checks

    settings = settings_or_exit()
    ok = True
    for name, state, detail in run_checks(settings):
        # A warning (no downloader yet) leaves the exit code alone: web processes and
        # downloaders often start together, and serving works without the latter.
        click.echo(f"{'ok' if state == 'ok' else state.upper():4} {name}: {detail}")
        ok = ok and state != "fail"
    sys.exit(0 if ok else 1)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(celery_args: tuple[str, ...]) -> None:
    """Run a downloader: `celery --app=havarti worker -l info` (extra options go to Celery)."""
    settings = settings_or_exit()
    if not settings.redis_uri:
        fail("REDIS_URI is not set: a downloader takes its jobs from Redis "
             "(without it, jobs run inside the web process)")
    from celery.bin.celery import celery

    # Exactly the seed's command line (app.worker_main would hand click the app object,
    # which click calls as a default factory: Havarti is also the WSGI callable).
    celery.main(args=["--app=havarti", "worker", "-l", "info", *celery_args],
                prog_name="havarti worker")


@main.command()
@click.option("-r", "--requirement", "requirements", required=True, multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A requirements file (names, optional pins) or a pylock.toml.")
@click.option("--python-version", "python_versions", multiple=True,
              help="Python MAJOR.MINOR to choose files for (repeatable) [default: this one].")
@click.option("--platform", "platforms", multiple=True,
              help="Wheel platform tag of the newest system to choose files for, e.g. "
                   "manylinux_2_28_x86_64, win_amd64 (repeatable) "
                   "[default: x86-64 Linux, every manylinux level].")
@click.option("--no-deps", is_flag=True,
              help="Cache only the requirements given, not their dependencies "
                   "(for fully pinned files; a pylock.toml never needs resolving).")
@click.option("--in-process", is_flag=True,
              help="Download in this process, not through the downloaders (REDIS_URI).")
@click.option("--timeout", type=click.IntRange(1), default=3600, show_default=True,
              help="Seconds to wait for the downloads.")
def prefetch(requirements: tuple[Path, ...], python_versions: tuple[str, ...],
             platforms: tuple[str, ...], no_deps: bool, in_process: bool, timeout: int) -> None:
    """Cache the files installing a requirements file needs, dependencies included,
    with a progress bar and a summary."""
    from havarti.application import Havarti
    from havarti.domain import prefetch as pf

    settings = settings_or_exit()
    if in_process:
        settings = settings.with_changes(redis_uri=None)
    try:
        target = pf.Target.build(python_versions, platforms)
        locked = [r for path in requirements if pf.is_lock_file(path)
                  for r in pf.read_requirements(path)]
        loose = [r for path in requirements if not pf.is_lock_file(path)
                 for r in pf.read_requirements(path)]
        resolver = None if no_deps or not loose else _resolver_binary()
    except pf.PrefetchError as exc:
        fail(str(exc))
    _require_a_worker(settings)
    prepare_or_exit(settings)
    application = Havarti(settings, migrate=False)
    index = application.holder.get()
    if resolver is None:
        plan = pf.plan(index, locked + loose, target)
    else:
        from havarti.resolver import UvResolver, local_index

        with local_index(application, settings) as url:
            plan = pf.plan_with_dependencies(index, loose, target, UvResolver(url, resolver))
        plan.merge(pf.plan(index, locked, target))
    try:
        pf.enqueue(index, plan)
    except pf.PrefetchError as exc:
        fail(str(exc))
    state = watch_prefetch(index, plan, timeout)
    cached = sum(state.cached.values())
    click.echo(f"{len(state.cached)} of {len(plan.files)} files cached, {cached:,} bytes")
    for requirement, reason in plan.problems:
        click.echo(f"FAILED {requirement}: {reason}")
    for filename, reason in sorted(state.failed.items()):
        click.echo(f"FAILED {filename}: {reason}")
    sys.exit(1 if plan.problems or state.failed else 0)


def _resolver_binary() -> str:
    from havarti.resolver import uv_binary

    return uv_binary()


def _require_a_worker(settings: Settings) -> None:
    """With REDIS_URI, refuse at once when no downloader would take the jobs."""
    if not settings.redis_uri:
        return
    from havarti.jobs.base import START_A_WORKER, WORKER_PING_TIMEOUT
    from havarti.jobs.celery import sending_runner

    runner = sending_runner(settings)
    # Longer than /ready waits, and asked three times before refusing: a worker that is
    # starting up, or on a busy machine, answers late (seen: 7 s in CI at a load of 10).
    for wait in (2 * WORKER_PING_TIMEOUT, 5 * WORKER_PING_TIMEOUT, 10 * WORKER_PING_TIMEOUT):
        try:
            if runner.workers(wait):
                return
        except Exception as exc:  # noqa: BLE001 -- redis and kombu raise many connection types
            fail("the broker (Redis) is unavailable: "
                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    fail(f"no worker is taking jobs from Redis: {START_A_WORKER}, "
         "or pass --in-process to download here")


#: While nothing finishes, the workers are counted again this often (seconds).
WORKER_RECHECK = 15.0


def watch_prefetch(index: Any, plan: Any, timeout: int) -> Any:
    """Poll until every planned file is cached or failed; a progress bar meanwhile.

    While nothing finishes, the workers are counted every WORKER_RECHECK seconds:
    when none has answered twice running, waiting on is pointless and the rest fail at once.
    """
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from havarti.domain import prefetch as pf
    from havarti.jobs.base import START_A_WORKER, WORKER_PING_TIMEOUT

    deadline = time.monotonic() + timeout
    reason = f"not cached after {timeout}s (is a downloader running?)"
    done, since, absent = -1, time.monotonic(), 0
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=None, transient=False) as bar:
        task = bar.add_task("caching files", total=len(plan.files))
        while True:
            state = pf.status(index, plan)
            finished = len(state.cached) + len(state.failed)
            bar.update(task, completed=finished)
            now = time.monotonic()
            if state.done(plan) or now > deadline:
                break
            if finished != done:
                done, since = finished, now
            elif now - since > WORKER_RECHECK:
                since = now
                try:
                    workers = index.jobs.workers(2 * WORKER_PING_TIMEOUT)
                except Exception:  # noqa: BLE001 -- unknown: keep waiting
                    workers = None
                # Twice in a row: one late answer on a busy machine must not end the wait.
                absent = absent + 1 if workers == 0 else 0
                if absent == 2:
                    reason = f"no worker is taking jobs from Redis any more: {START_A_WORKER}"
                    break
            time.sleep(0.5)
    for wanted in plan.files:
        if wanted.filename not in state.cached and wanted.filename not in state.failed:
            state.failed[wanted.filename] = reason
    return state


@main.command()
@click.argument("name")
@click.option("--merge", "action", flag_value="merge",
              help="Offer upstream's files of NAME beside the private ones.")
@click.option("--shadow", "action", flag_value="shadow",
              help="Offer only the private files; hide upstream's files of NAME.")
@click.option("--release", "action", flag_value="release",
              help="Hand a private project with no files left back to upstream.")
def project(name: str, action: str | None) -> None:
    """Show how the project NAME stands towards upstream, or change it.

    A private project shadows the public project of its name unless merged
    (UPSTREAM_MERGE is the start-up default; --merge / --shadow decide per
    project, at once for every running process). Changes go to the audit log.
    """
    from havarti.errors import HavartiError
    from havarti.wiring import build_index

    settings = settings_or_exit()
    prepare_or_exit(settings)
    index = build_index(settings)
    try:
        if action == "release":
            state = index.release(name, remote_addr="cli")
        elif action is not None:
            state = index.set_upstream_mode(name, action, remote_addr="cli")
        else:
            state = index.project_mode(name)
        hidden = index.upstream_files(state.project) if state.shadows_upstream else None
    except HavartiError as exc:
        fail(str(exc))
    finally:
        index.close()
    def files(count: int, kind: str) -> str:
        return f"{count} {kind} file{'' if count == 1 else 's'}"

    if not state.private:
        standing = "not private: upstream's files are offered"
    elif state.shadows_upstream:
        standing = "private, shadows upstream" + (
            f" (hides {files(hidden, 'upstream')})" if hidden is not None else "")
    else:
        standing = "private, merged with upstream"
    choice = state.upstream_mode or "UPSTREAM_MERGE default"
    click.echo(f"{state.project}: {standing}; {files(state.files, 'private')}"
               + (f"; mode: {choice}" if state.private else ""))


@main.command()
@click.option("--dry-run", is_flag=True, help="Show what would be removed or evicted; change nothing.")
@click.option("--max-size", help="The bound to apply instead of CACHE_MAX_SIZE (e.g. 50GB).")
@click.option("--grace", help="Keep leftovers younger than this (e.g. 30m) [default 1h].")
def gc(dry_run: bool, max_size: str | None, grace: str | None) -> None:
    """Remove what killed processes left; evict least recently served cached files
    beyond CACHE_MAX_SIZE (never private uploads).

    Leftovers: partial uploads and download spools on this machine, and stored
    objects no database row points at, older than the grace period.
    """
    from havarti.config import ConfigError, parse_duration, parse_size
    from havarti.db import Database
    from havarti.db.files import Files
    from havarti.db.leases import LeaseTable
    from havarti.domain.coordination import Leases
    from havarti.domain.eviction import evict, human
    from havarti.domain.leftovers import (
        LEFTOVER_GRACE,
        LeftoversReport,
        remove_local_leftovers,
        remove_orphan_objects,
    )
    from havarti.storage import StorageError, make_storage
    from havarti.wiring import spool_dir

    settings = settings_or_exit()
    try:
        bound = parse_size("--max-size", max_size) if max_size else settings.cache_max_size
        keep = parse_duration("--grace", grace) if grace else LEFTOVER_GRACE
    except ConfigError as exc:
        fail(str(exc))
    db = Database(settings.database_url)
    try:
        storage = make_storage(settings)
        local = remove_local_leftovers(storage, spool_dir(settings), keep, dry_run)
        files = Files(db)
        objects = remove_orphan_objects(files, storage, keep, dry_run)
        report = (evict(files, Leases(LeaseTable(db)), storage, bound, dry_run)
                  if bound is not None else None)
    except StorageError as exc:
        fail(f"storage: {exc}")
    finally:
        db.dispose()
    leftovers = LeftoversReport(dry_run, local.removed + objects.removed)
    for what, size in leftovers.removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} {what} ({human(size)})")
    click.echo(leftovers.summary())
    if report is None:
        click.echo("no eviction: CACHE_MAX_SIZE is not set (nor --max-size)")
        return
    for item in report.evicted:
        served = item.last_served.isoformat(timespec="seconds") if item.last_served else "never"
        click.echo(f"{'would evict' if dry_run else 'evicted'} {item.filename} "
                   f"({human(item.size)}, last served {served})")
    click.echo(report.summary())


@main.group()
def storage() -> None:
    """Storage tools."""


@storage.command("copy")
@click.option("--to", "to", multiple=True, metavar="KEY=VALUE",
              help="A setting of the target backend (repeat), e.g. --to STORAGE=s3storage.")
@click.option("--env-file", type=click.Path(exists=True, dir_okay=False),
              help="The target's settings as KEY=VALUE lines.")
def storage_copy(to: tuple[str, ...], env_file: str | None) -> None:
    """Copy every stored object to another backend, verifying each sha256; rerun to resume.

    The source is the configured storage (the environment); the target is the
    environment with --to / --env-file settings on top.
    """
    import os

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from havarti.domain.eviction import human
    from havarti.storage import StorageError, make_storage
    from havarti.storage.copy import copy_all

    source_settings = settings_or_exit()
    changes: dict[str, str] = {}
    lines = list(to)
    if env_file:
        lines += [line.strip() for line in open(env_file, encoding="utf-8")
                  if line.strip() and not line.lstrip().startswith("#")]
    for line in lines:
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            fail(f"--to {line!r}: expected KEY=VALUE")
        changes[name.strip()] = value.strip()
    if not changes:
        fail("no target: give its settings with --to KEY=VALUE or --env-file")
    try:
        target_settings = load_settings({**os.environ, **changes})
    except ConfigError as exc:
        fail(f"target configuration error: {exc}")
    try:
        source, target = make_storage(source_settings), make_storage(target_settings)
        created = target.ensure_ready()
        if source.check() == target.check():
            fail("the target is the source: change STORAGE or the bucket/container")
        if created:
            click.echo(f"havarti: target: {created}", err=True)
        objects = list(source.list())
    except StorageError as exc:
        fail(f"storage: {exc}")
    total = sum(size for _, size in objects)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(f"{len(objects)} objects", total=total)
        report = copy_all(source, target, objects,
                          progress=lambda n: progress.advance(task, n),
                          on_object=lambda key: progress.update(
                              task, description=key.rsplit("/", 1)[-1][:40]))
    for key, reason in report.failed:
        click.echo(f"FAIL {key}: {reason}", err=True)
    click.echo(f"copied {report.copied} objects ({human(report.copied_bytes)}), "
               f"skipped {report.skipped} already at the target, failed {len(report.failed)}")
    sys.exit(1 if report.failed else 0)


@contextmanager
def database(settings: Settings | None = None,
             refused: tuple[type[Exception], ...] = ()) -> Iterator[Any]:
    """The migrated database for one command, disposed after it; an exception in
    ``refused`` is the command's refusal: one line on stderr, exit 2."""
    db = open_database(settings or settings_or_exit())
    try:
        yield db
    except refused as exc:
        fail(str(exc))
    finally:
        db.dispose()


def open_database(settings: Settings) -> Any:
    """The database, migrated (the operator's tools may run before the first `serve`)."""
    from havarti.application import startup_failure
    from havarti.db import Database

    database = Database(settings.database_url)
    try:
        database.upgrade()
    except Exception as exc:  # noqa: BLE001 -- database drivers raise many types
        fail(startup_failure(exc))
    return database


@main.group()
def token() -> None:
    """API tokens: read, upload (optionally to some projects only) or admin."""


@token.command("create")
@click.option("--scope", type=click.Choice(["read", "upload", "admin"]), required=True,
              help="read: install; upload: publish new files; admin: yank, delete, tokens, policies.")
@click.option("--project", "projects", multiple=True,
              help="Limit an upload token to this project or prefix, e.g. acme-* (repeatable).")
@click.option("--expires", help="Refuse the token after this long, e.g. 90d [default: never].")
@click.option("--note", default="", help="What the token is for (shown in `token list`).")
def token_create(scope: str, projects: tuple[str, ...], expires: str | None, note: str) -> None:
    """Create a token and print it: it is shown this once, and only its hash is kept."""
    from havarti.config import parse_duration
    from havarti.db.tokens import TokenRepository
    from havarti.domain.access import NewToken, issue
    from havarti.errors import InvalidRequest

    settings = settings_or_exit()
    try:
        new = NewToken.checked(scope, projects, parse_duration("--expires", expires) if expires
                               else None, note)
    except (InvalidRequest, ConfigError) as exc:
        fail(str(exc))
    with database(settings) as db:
        secret, record = issue(TokenRepository(db), new, "cli")
    limits = f" for {' '.join(record.projects)}" if record.projects else ""
    expiry = f", expires {record.expires:%Y-%m-%d %H:%M} UTC" if record.expires else ""
    click.echo(f"havarti: token {record.id} ({record.scope}{limits}{expiry}); it is shown only "
               "once:", err=True)
    click.echo(secret)


@token.command("list")
def token_list() -> None:
    """Every token: id, scope, projects, expiry, last use, state (never the secret)."""
    from havarti.db.tokens import TokenRepository

    with database() as db:
        records = TokenRepository(db).list()

    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else "never"

    click.echo(f"{'ID':>4}  {'SCOPE':<7} {'PROJECTS':<20} {'EXPIRES':<16} {'LAST USED':<16} "
               f"{'STATE':<8} NOTE")
    for t in records:
        state = "revoked" if t.revoked else "active"
        projects = " ".join(t.projects) or "any"
        click.echo(f"{t.id:>4}  {t.scope:<7} {projects:<20} {when(t.expires):<16} "
                   f"{when(t.last_used):<16} {state:<8} {t.note}")


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token: every web process refuses it from its next request."""
    from havarti.db.tokens import TokenRepository
    from havarti.errors import NotFound

    with database(refused=(NotFound,)) as db:
        record = TokenRepository(db).revoke(token_id, "cli")
    click.echo(f"token {record.id} revoked")


@main.group()
def reserved() -> None:
    """Reserved names and prefixes: served only from private uploads, never asked of upstream."""


@reserved.command("add")
@click.argument("pattern")
@click.option("--note", default="", help="Why (shown in `reserved list` and the admin page).")
def reserved_add(pattern: str, note: str) -> None:
    """Reserve a name or a prefix such as acme-* (web processes see it within seconds)."""
    from havarti.db.policies import PolicyRepository
    from havarti.domain.policy import reserve
    from havarti.errors import Conflict, InvalidRequest

    with database(refused=(Conflict, InvalidRequest)) as db:
        found = reserve(PolicyRepository(db), pattern, note, "cli")
    click.echo(f"reserved {found.pattern} (id {found.id})")


@reserved.command("list")
def reserved_list() -> None:
    """Every reserved name: from RESERVED_NAMES and from the database (with ids)."""
    from havarti.db.policies import PolicyRepository

    settings = settings_or_exit()
    for pattern in settings.reserved_names:
        click.echo(f"   -  {pattern}  (RESERVED_NAMES)")
    with database(settings) as db:
        for found in PolicyRepository(db).reservations():
            click.echo(f"{found.id:>4}  {found.pattern}  {found.note}".rstrip())


@reserved.command("remove")
@click.argument("reservation_id", type=int)
def reserved_remove(reservation_id: int) -> None:
    """Release a reservation made with `reserved add` (by its id)."""
    from havarti.db.policies import PolicyRepository
    from havarti.errors import NotFound

    with database(refused=(NotFound,)) as db:
        found = PolicyRepository(db).unreserve(reservation_id, "cli")
    click.echo(f"released {found.pattern}")


@main.group()
def policy() -> None:
    """Deny/allow rules for upstream files (POLICY_FILE and the database's)."""


@policy.command("add")
@click.argument("action", type=click.Choice(["deny", "allow"]))
@click.argument("match", default="")
@click.option("--filename", default="", help="A filename glob, e.g. '*-win32.whl'.")
@click.option("--reason", default="", help="Shown to clients refused by the rule.")
def policy_add(action: str, match: str, filename: str, reason: str) -> None:
    """Add a rule: MATCH is a project with optional versions (urllib3<1.26.5, evil-pkg, acme-*)."""
    from havarti.db.policies import PolicyRepository
    from havarti.domain.policy import Rule, add_rule
    from havarti.errors import InvalidRequest

    try:
        rule = Rule.parse(action, match, filename, reason)
    except InvalidRequest as exc:
        fail(str(exc))
    with database() as db:
        stored = add_rule(PolicyRepository(db), rule, "cli")
    click.echo(f"added rule {stored.id}: {stored.describe()}")


@policy.command("list")
def policy_list() -> None:
    """Every rule in force, POLICY_FILE's first (id -), then the database's."""
    for rule in load_policy(settings_or_exit()).rules:
        click.echo(f"{rule.id if rule.id is not None else '-':>4}  {rule.describe()}")


@policy.command("remove")
@click.argument("rule_id", type=int)
def policy_remove(rule_id: int) -> None:
    """Remove a database rule by its id (POLICY_FILE's are changed in the file)."""
    from havarti.db.policies import PolicyRepository
    from havarti.domain.policy import remove_rule
    from havarti.errors import NotFound

    with database(refused=(NotFound,)) as db:
        rule = remove_rule(PolicyRepository(db), rule_id, "cli")
    click.echo(f"removed rule {rule_id}: {rule.describe()}")


@policy.command("check")
@click.option("-r", "--requirement", "requirements", required=True, multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A requirements file (names, optional pins) or a pylock.toml.")
def policy_check(requirements: tuple[Path, ...]) -> None:
    """Say which requirements the policy would block; exit 1 if any."""
    from havarti.domain import prefetch as pf

    settings = settings_or_exit()
    try:
        wanted = [r for path in requirements for r in pf.read_requirements(path)]
    except pf.PrefetchError as exc:
        fail(str(exc))
    current = load_policy(settings)
    blocked = 0
    for requirement in wanted:
        reason = current.check(requirement)
        if reason is None:
            click.echo(f"ok       {requirement}")
        else:
            blocked += 1
            click.echo(f"BLOCKED  {requirement}: {reason}")
    click.echo(f"{blocked} of {len(wanted)} requirements blocked")
    sys.exit(1 if blocked else 0)


def load_policy(settings: Settings) -> Any:
    """The policy in force: POLICY_FILE, RESERVED_NAMES and the database's rules."""
    from havarti.db.policies import PolicyRepository
    from havarti.domain.policy import read_policy_file, snapshot
    from havarti.errors import InvalidRequest

    try:
        file_rules = tuple(read_policy_file(settings.policy_file)) if settings.policy_file else ()
    except InvalidRequest as exc:
        fail(str(exc))
    with database(settings) as db:
        return snapshot(PolicyRepository(db), file_rules, settings.reserved_names)


if __name__ == "__main__":
    main()
