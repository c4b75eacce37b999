"""gunicorn's settings for Havarti, read from the working directory by any ``gunicorn`` command.

The seed's line, ``gunicorn -w 3 --preload -b 0.0.0.0:$PORT havarti:app`` (the
Procfile's ``web``, the Docker image's command), runs from the repository root,
where gunicorn finds this file: its workers become Havarti's threaded, guarded
workers instead of gunicorn's default synchronous ones, which one slow download
holds whole. Options on the command line still win. The options themselves
live in :func:`havarti.server.worker_options`, shared with ``havarti serve``.
"""

from havarti.server import lean_imports, worker_options

lean_imports()
globals().update(worker_options())
