"""The legacy upload API, as twine and uv publish speak it (multipart POST to / or /legacy/)."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from havarti.distributions import normalized
from havarti.domain.uploads import Upload
from havarti.errors import InvalidUpload
from havarti.web import context
from havarti.web.auth import require
from havarti.web.errors import one_line

bp = Blueprint("upload", __name__)


@bp.post("/")
@bp.post("/legacy/")
def upload() -> Response:
    # Checked before the body is parsed: no one without a passcode or token costs us a spool.
    principal = require(request, "upload", "upload")
    form = request.form
    action = form.get(":action")
    if action != "file_upload":
        raise InvalidUpload(f"unsupported :action {action!r}; only file_upload is supported")
    content = request.files.get("content")
    if content is None or not content.filename:
        raise InvalidUpload("the form has no 'content' file")
    index = context.index()
    name = form.get("name", "")
    if name:
        # Which projects this token may upload to: before the file is read or stored.
        principal.require_upload_to(normalized(name), index.reserved_names())
    uploaded = index.upload(Upload(
        name=name,
        version=form.get("version", ""),
        filename=content.filename,
        content=content.stream,  # type: ignore[arg-type]  # a spooled, seekable file
        sha256_digest=form.get("sha256_digest"),
        md5_digest=form.get("md5_digest"),
        blake2_256_digest=form.get("blake2_256_digest"),
    ))
    row = uploaded.file
    response = one_line(200, f"OK: stored {row.filename} ({row.size} bytes)")
    if uploaded.warning:
        # twine --verbose prints the body of a successful upload, uv publish at -vv.
        response.set_data(response.get_data() + uploaded.warning.encode() + b"\n")
    return response
