"""Reads bench/ogc.sh's wrk outputs, prints gridwatch against tipg per request, records a line."""

from common import RESULTS, record
from lookup_report import parse

CASES = {"items10": "10 grids", "items100bbox": "100 grids in a bbox", "feature": "one grid", "tile12": "a z12 tile"}


def main() -> None:
    figures = {}
    print(f"{'request':22s} {'gridwatch req/s':>16s} {'p99 ms':>8s} {'tipg req/s':>11s} {'p99 ms':>8s} {'ratio':>6s}")
    for case, label in CASES.items():
        ours, tipg = (parse(str(RESULTS / f"ogc-{who}-{case}.tmp")) for who in ("gridwatch", "tipg"))
        ratio = ours["rps"] / tipg["rps"]
        errors = ours["non_2xx"] + tipg["non_2xx"]
        print(f"{label:22s} {ours['rps']:16.0f} {ours['p99_ms']:8.1f} {tipg['rps']:11.0f} {tipg['p99_ms']:8.1f} "
              f"{ratio:5.2f}x" + (f"   non-2xx: {ours['non_2xx']} / {tipg['non_2xx']}" if errors else ""))
        figures[case] = {"gridwatch_rps": round(ours["rps"]), "gridwatch_p99_ms": ours["p99_ms"],
                         "tipg_rps": round(tipg["rps"]), "tipg_p99_ms": tipg["p99_ms"], "ratio": round(ratio, 2),
                         "non_2xx": errors}
    print("target: gridwatch >= 1.0x tipg on every row")
    record("ogc", connections=32, workers=2, **figures)


if __name__ == "__main__":
    main()
