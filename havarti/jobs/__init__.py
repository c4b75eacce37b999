"""Background jobs: one interface, two runners (in-process threads, or Celery on Redis).

Web code calls ``runner.enqueue("cache_file", project=..., filename=...)`` and
never knows which runner is behind it. Jobs take names, not objects, and are
idempotent: a job for work already done does nothing.
"""

from havarti.jobs.base import JobRunner
from havarti.jobs.inprocess import InProcessRunner

__all__ = ["InProcessRunner", "JobRunner"]
