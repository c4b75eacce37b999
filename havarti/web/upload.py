"""The legacy upload API, as twine and uv publish speak it (multipart POST to / or /legacy/)."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from havarti.domain.uploads import Upload
from havarti.errors import InvalidUpload
from havarti.web import context
from havarti.web.auth import passcode_ok
from havarti.web.errors import one_line, unauthorized

bp = Blueprint("upload", __name__)


@bp.post("/")
@bp.post("/legacy/")
def upload() -> Response:
    settings = context.settings()
    if not settings.passcode:
        return one_line(403, "uploads are disabled: set the PASSCODE environment variable to enable them")
    # Checked before the body is parsed: no one without the passcode costs us a spool.
    if not passcode_ok(request, settings.passcode):
        return unauthorized("wrong or missing passcode (basic-auth password)")
    form = request.form
    action = form.get(":action")
    if action != "file_upload":
        raise InvalidUpload(f"unsupported :action {action!r}; only file_upload is supported")
    content = request.files.get("content")
    if content is None or not content.filename:
        raise InvalidUpload("the form has no 'content' file")
    uploaded = context.index().upload(Upload(
        name=form.get("name", ""),
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
