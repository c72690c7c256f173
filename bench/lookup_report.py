"""Reads two wrk outputs (ours, baseline), prints figures and ratio, records a JSON line."""

import re
import sys
from pathlib import Path

from common import record


def parse(path: str) -> dict:
    text = Path(path).read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    p99_ms = float(p99[1]) * {"us": 0.001, "ms": 1, "s": 1000}[p99[2]]
    errors = re.search(r"Socket errors: (.*)", text)
    status = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": rps, "p99_ms": p99_ms, "socket_errors": errors[1] if errors else None,
            "non_2xx": int(status[1]) if status else 0}


def main() -> None:
    ours, base = parse(sys.argv[1]), parse(sys.argv[2])
    ratio = ours["rps"] / base["rps"]
    for label, fig in (("ours (in-memory index)", ours), ("baseline (one PostGIS query)", base)):
        print(f"{label:30s} {fig['rps']:8.0f} req/s   p99 {fig['p99_ms']:6.2f} ms   "
              f"404s (outside the county) {fig['non_2xx']}" + (f"   socket errors: {fig['socket_errors']}"
                                                                  if fig["socket_errors"] else ""))
    print(f"ratio: {ratio:.2f}x (targets: >= 5,000 req/s, p99 <= 15 ms, >= 1.5x the baseline)")
    record("lookup", ours_rps=round(ours["rps"]), ours_p99_ms=ours["p99_ms"], baseline_rps=round(base["rps"]),
           baseline_p99_ms=base["p99_ms"], ratio=round(ratio, 2), connections=32, workers=2)


if __name__ == "__main__":
    main()
