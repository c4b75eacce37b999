"""What checking a token costs: one indexed read per request (no cache of validity).

    python -m bench.tokens [DATABASE_URL]   # default: a throwaway SQLite file

Prints the median and 99th percentile of ``TokenRepository.find`` plus the
"last used" check, the work every token-carrying request does.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime

from havarti.db import Database
from havarti.db.tokens import TokenRepository
from havarti.domain.access import NewToken, issue, lookup


def main(url: str, rounds: int = 2000) -> None:
    db = Database(url)
    db.upgrade()
    tokens = TokenRepository(db)
    secret, _ = issue(tokens, NewToken.checked("read", note="bench"))
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        record = lookup(tokens, secret)
        assert record is not None and record.refusal(datetime.now(UTC)) is None
        tokens.touch(record, datetime.now(UTC))
        timings.append(time.perf_counter() - started)
    timings.sort()
    print(f"{db.engine.dialect.name}: token check median {statistics.median(timings) * 1e6:.0f} µs, "
          f"p99 {timings[int(rounds * 0.99)] * 1e6:.0f} µs over {rounds} checks")
    db.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(f"sqlite:///{folder}/bench.db")
