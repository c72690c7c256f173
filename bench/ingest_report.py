"""Reads wrk's output for bench/ingest.sh, checks the stored count, records a JSON line."""

import re
import sys
from pathlib import Path

from common import record
from lookup_report import parse


def main() -> None:
    text = Path(sys.argv[1]).read_text()
    stored, rate, seconds = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    figures = parse(sys.argv[1])
    acked = int(re.search(r"ACKED (\d+)", text)[1])
    failed = int(re.search(r"FAILED (\d+)", text)[1])
    achieved = acked / (seconds - 1)  # the last second only drains
    print(f"asked {rate:.0f}/s for {seconds:.0f} s: achieved {achieved:.0f} alerts/s, p99 {figures['p99_ms']:.2f} ms, "
          f"{failed} errors" + (f", socket errors: {figures['socket_errors']}" if figures["socket_errors"] else ""))
    print(f"acknowledged {acked}, stored {stored}: {'equal' if acked == stored else 'DIFFERENT'} "
          f"(targets: 1,000/s, p99 <= 15 ms, zero errors, stored == acknowledged)")
    record("ingest", rate_asked=rate, achieved_per_s=round(achieved), p99_ms=figures["p99_ms"], errors=failed,
           acknowledged=acked, stored=stored, seconds=seconds)


if __name__ == "__main__":
    main()
