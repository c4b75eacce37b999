"""The versions-and-files table of a project page, written without a template engine.

A project may hold thousands of files; Jinja costs tens of microseconds a row,
plain string building a few. The page around it is a template (project.html).
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from havarti.domain.browse import Release
from havarti.domain.pages import file_url
from havarti.web.charts import filesize

HEAD = ('<table class="files">\n  <thead><tr><th scope="col">File</th><th scope="col">Size</th>'
        '<th scope="col">Uploaded</th><th scope="col">Python</th><th scope="col">Origin</th>'
        '<th scope="col">SHA-256</th></tr></thead>\n')
ORIGINS = {"private": "private", "cached": "cached here", "upstream": "upstream"}
YANKED = '<span class="badge yanked">yanked</span>'


def render_listing(project: str, releases: list[Release], cached: frozenset[str]) -> bytes:
    """Every release newest first, one row per file; ``cached`` names upstream files held here."""
    if not releases:
        return b"<p>No files.</p>\n"
    out = [HEAD]
    for release in releases:
        version = escape(release.version)
        badge = f" {YANKED}" if release.yanked else ""
        out.append(f'  <tbody class="release" id="v{version}">\n  <tr class="version">'
                   f'<th colspan="6" scope="rowgroup"><h3>{version}{badge}</h3></th></tr>\n')
        for f in release.files:
            filename = escape(f.filename)
            row_class = ' class="is-yanked"' if f.yanked is not False else ""
            notes = ""
            if f.yanked is not False:
                notes += f" {YANKED}"
                if f.yanked:
                    notes += f'<span class="reason">{escape(str(f.yanked))}</span>'
            if f.origin == "private":
                notes += (f' <a class="manage" href="files/{escape(quote(f.filename))}/" '
                          f'aria-label="Manage {filename}">Manage</a>')
            origin = "cached" if f.origin == "upstream" and f.filename in cached else f.origin
            uploaded = f.upload_datetime.strftime("%Y-%m-%d %H:%M UTC") if f.upload_time else "—"  # type: ignore[union-attr]
            out.append(
                f'  <tr id="{filename}"{row_class}><th scope="row"><a href="{escape(file_url(project, f.filename))}">'
                f'{filename}</a>{notes}</th><td data-label="Size">{filesize(f.size)}</td>'
                f'<td data-label="Uploaded">{uploaded}</td>'
                f'<td data-label="Requires Python">{escape(f.requires_python or "any")}</td>'
                f'<td data-label="Origin">{ORIGINS.get(origin, origin)}</td>'
                f'<td data-label="SHA-256">{_short_hash(f.filename, f.hashes.get("sha256"))}</td></tr>\n')
        out.append("  </tbody>\n")
    out.append("</table>\n")
    return "".join(out).encode()


#: Hex digits of a sha256 shown in the table: enough to tell files apart at a glance.
SHORT_HASH = 12


def _short_hash(filename: str, sha256: str | None) -> str:
    """The hash column: a short hash linking to the file's page (which shows it whole),
    and a copy button (shown by havarti.js) that copies the whole hash."""
    if not sha256:
        return "—"
    full = escape(sha256)
    return (f'<a class="sha" href="files/{escape(quote(filename))}/" title="sha256 {full}">'
            f'<code>{escape(sha256[:SHORT_HASH])}</code></a>'
            f'<button type="button" class="copy-hash" hidden data-copy-text="{full}" '
            f'aria-label="Copy the SHA-256 of {escape(filename)}">Copy</button>')
