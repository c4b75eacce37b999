"""Files belong to the project their filename names: repair rows that break it.

An upstream page could list another project's filename (``evilproj`` listing
``victim-1.0-py3-none-any.whl`` with other bytes), and the fetched file's row
then served those bytes as ``victim``'s. From now on such entries are dropped
when a page is parsed and a stored row is reused only for its own project and
sha256; this repairs what is already stored:

- a cached file whose filename names another project than its row's: the row
  is deleted (its bytes are not trusted for either project; the object, now
  pointed at by no row, goes with the next leftover sweep);
- an uploaded file in that state (uploads were always checked, so only by hand):
  moved to the project its filename names;
- stored upstream pages: entries naming another project (or no wheel/sdist
  name) are dropped, and their stored rendering is discarded.

``files.filename`` stays unique across projects, not per project: a filename
names exactly one project, so with rows matching their filenames the two rules
are the same, and the global one also keeps the lease and storage keys (made
from the filename) and PyPI's own rule ("a filename is used once, anywhere").
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

revision = "0003"
down_revision = "0002"

projects = sa.table("projects", sa.column("id", sa.Integer), sa.column("name", sa.String),
                    sa.column("display_name", sa.String), sa.column("private", sa.Boolean),
                    sa.column("serial", sa.Integer), sa.column("created", sa.DateTime))
files = sa.table("files", sa.column("id", sa.Integer), sa.column("project_id", sa.Integer),
                 sa.column("filename", sa.String), sa.column("origin", sa.String))
pages = sa.table("upstream_pages", sa.column("id", sa.Integer), sa.column("name", sa.String),
                 sa.column("data", sa.Text), sa.column("rendered", sa.Text),
                 sa.column("fetched", sa.DateTime))


def project_of(filename: str) -> str | None:
    """The project a wheel or sdist filename names (as havarti.distributions does)."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        if filename.endswith(".tar.gz"):
            return str(parse_sdist_filename(filename)[0])
        if filename.endswith(".zip"):
            return str(parse_sdist_filename(filename[:-4] + ".tar.gz")[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def upgrade() -> None:
    connection = op.get_bind()
    now = datetime.now(UTC)
    rows = connection.execute(sa.select(files.c.id, files.c.filename, files.c.origin,
                                        projects.c.name)
                              .select_from(files.join(projects, files.c.project_id == projects.c.id))
                              ).all()
    for file_id, filename, origin, project in rows:
        owner = project_of(filename)
        if owner is None or owner == project:
            continue
        if origin != "uploaded":
            connection.execute(sa.delete(files).where(files.c.id == file_id))
            continue
        target = connection.execute(sa.select(projects.c.id).where(projects.c.name == owner)
                                    ).scalar()
        if target is None:
            target = connection.execute(sa.insert(projects).values(
                name=owner, display_name=owner, private=True, serial=0, created=now)
                .returning(projects.c.id)).scalar_one()
        connection.execute(sa.update(files).where(files.c.id == file_id)
                           .values(project_id=target))
        connection.execute(sa.update(projects).where(projects.c.id == target)
                           .values(private=True, serial=projects.c.serial + 1))
        connection.execute(sa.update(projects).where(projects.c.name == project)
                           .values(serial=projects.c.serial + 1))

    for page_id, name in connection.execute(sa.select(pages.c.id, pages.c.name)).all():
        data = connection.execute(sa.select(pages.c.data).where(pages.c.id == page_id)).scalar()
        try:
            entries = json.loads(data or "[]")
        except ValueError:
            entries = None
        if not isinstance(entries, list):
            continue
        canonical = canonicalize_name(name)
        kept = [e for e in entries if isinstance(e, dict)
                and project_of(str(e.get("filename", ""))) == canonical]
        if len(kept) != len(entries):
            connection.execute(sa.update(pages).where(pages.c.id == page_id).values(
                data=json.dumps(kept, separators=(",", ":")), rendered=None, fetched=now))


def downgrade() -> None:
    # A repair: there is nothing to undo.
    pass
