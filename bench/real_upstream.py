"""Havarti against the real upstream: ``python bench/real_upstream.py [--rounds 4]``.

Installs the reference set of bench/reference.py (45 pinned wheels: boto3,
botocore, numpy, cryptography, charset-normalizer, pydantic-core, ... and their
neighbours) with ``uv pip install --no-cache --no-deps`` through Havarti on its
defaults (upstream PyPI, INDEX_TTL=0: every page revalidated) and straight from
PyPI, interleaved in each round:

    direct, Havarti cold (a fresh, empty Havarti), direct, Havarti warm (the same Havarti)

and prints the median of each round's ratio. This is the one benchmark that
reaches the public index, and only through the machine's ordinary network.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

from pypi_simple import PYPI_SIMPLE_ENDPOINT

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import measure, reference  # noqa: E402
from tests.support.clients import uv_binary  # noqa: E402
from tests.support.server import clean_env  # noqa: E402

WORK = ROOT / "bench" / ".work" / "real"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    uv, env = uv_binary(), clean_env()
    requirements = list(reference.DISTRIBUTIONS)
    cold, warm = [], []
    for i in range(args.rounds):
        data = WORK / f"round-{i}"
        shutil.rmtree(data, ignore_errors=True)
        direct_cold = measure.uv_install(uv, PYPI_SIMPLE_ENDPOINT, requirements, env)
        with measure.havarti(data, None) as server:  # every setting at its default
            ours_cold = measure.uv_install(uv, server.index_url, requirements, env)
            # Stored before the warm round: a file's last byte reaches the client first.
            time.sleep(2)
            direct_warm = measure.uv_install(uv, PYPI_SIMPLE_ENDPOINT, requirements, env)
            ours_warm = measure.uv_install(uv, server.index_url, requirements, env)
        cold.append((ours_cold, direct_cold))
        warm.append((ours_warm, direct_warm))
        print(f"round {i + 1}: cold {ours_cold:.2f} s vs {direct_cold:.2f} s, "
              f"warm {ours_warm:.2f} s vs {direct_warm:.2f} s", file=sys.stderr, flush=True)
    lines = [f"Real upstream, {time.strftime('%Y-%m-%d %H:%M')} UTC, {len(requirements)} pinned "
             f"wheels, {args.rounds} interleaved rounds", "",
             "| install | Havarti, median s | direct, median s | median of ratios | rounds |",
             "| --- | ---: | ---: | ---: | --- |"]
    for label, pairs in (("warm (files in Havarti, pages revalidated)", warm),
                         ("cold (empty Havarti)", cold)):
        ratios = [ours / direct for ours, direct in pairs]
        lines.append(f"| {label} | {statistics.median(p[0] for p in pairs):.2f} | "
                     f"{statistics.median(p[1] for p in pairs):.2f} | "
                     f"{statistics.median(ratios):.2f}x | {', '.join(f'{r:.2f}' for r in ratios)} |")
    table = "\n".join(lines) + "\n"
    print(table)
    (ROOT / "bench" / "results-real.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
