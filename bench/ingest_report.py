"""Reads wrk's outputs for bench/ingest.sh (ours, then the empty-transaction baseline),
checks the stored count, prints both and the ratio of their p99s, records a JSON line."""

import re
import sys
from pathlib import Path

from common import record
from lookup_report import parse


def counts(path: str) -> tuple[int, int]:
    text = Path(path).read_text()
    return int(re.search(r"ACKED (\d+)", text)[1]), int(re.search(r"FAILED (\d+)", text)[1])


def main() -> None:
    ours_file, base_file = sys.argv[1], sys.argv[2]
    stored, rate, seconds = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    ours, base = parse(ours_file), parse(base_file)
    (acked, failed), (base_acked, base_failed) = counts(ours_file), counts(base_file)
    for label, fig, n, errors in (("baseline (empty transaction)", base, base_acked, base_failed),
                                  ("ours (POST /alerts)", ours, acked, failed)):
        print(f"{label:30s} {n / (seconds - 1):6.0f} alerts/s   p99 {fig['p99_ms']:6.2f} ms   {errors} errors"
              + (f"   socket errors: {fig['socket_errors']}" if fig["socket_errors"] else ""))
    ratio = ours["p99_ms"] / base["p99_ms"]
    print(f"p99 ratio: {ratio:.2f}x the baseline's; acknowledged {acked}, stored {stored}: "
          f"{'equal' if acked == stored else 'DIFFERENT'} (targets: {rate:.0f}/s, 0 errors, stored == acknowledged, "
          f"p99 <= 3x the baseline's)")
    record("ingest", rate_asked=rate, achieved_per_s=round(acked / (seconds - 1)), p99_ms=ours["p99_ms"],
           baseline_p99_ms=base["p99_ms"], p99_ratio=round(ratio, 2), errors=failed, acknowledged=acked,
           stored=stored, seconds=seconds)


if __name__ == "__main__":
    main()
