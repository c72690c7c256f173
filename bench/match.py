"""Bulk matching: 1,000,000 random points in the county's bounding box to grids.

Ours (`GridIndex.match`: a raster of the county, polygon tests only near borders) against
geopandas.sjoin on the same points and polygons. Results must be identical (with the
border rule applied to sjoin's answer: lowest code of the grids covering a point).

    .venv/bin/python bench/match.py [--points N]
"""

import argparse
import time

import geopandas as gpd
import numpy as np
import shapely
from common import connect, record

from gridwatch.geo.grid_index import GridIndex


def best_of(runs: int, fn):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    with connect() as conn:
        index = GridIndex.load(conn)
    if not len(index):
        raise SystemExit("no grids stored: run `gridwatch demo load` first")
    rng = np.random.default_rng(20261126)
    minx, miny, maxx, maxy = shapely.total_bounds(index.geoms)
    lon, lat = rng.uniform(minx, maxx, args.points), rng.uniform(miny, maxy, args.points)
    print(f"{args.points:,} random points in the bbox of {len(index)} grids (boundary version {index.version})")

    ours_s, rows = best_of(3, lambda: index.match(lon, lat))

    grids = gpd.GeoDataFrame({"code": index.codes}, geometry=list(index.geoms), crs=4326)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    sjoin_s, joined = best_of(3, lambda: gpd.sjoin(points, grids, predicate="intersects", how="left"))

    theirs = joined["code"].fillna("").groupby(level=0).min().reindex(range(args.points)).to_numpy()
    ours = np.where(rows >= 0, index.codes[np.maximum(rows, 0)], "")
    identical = bool((ours == theirs).all())
    ours_rate, sjoin_rate = args.points / ours_s, args.points / sjoin_s
    ratio = ours_rate / sjoin_rate
    print(f"ours (GridIndex.match):    {ours_rate / 1e6:6.2f} M points/s  ({ours_s * 1000:.0f} ms)")
    print(f"baseline (geopandas.sjoin): {sjoin_rate / 1e6:6.2f} M points/s  ({sjoin_s * 1000:.0f} ms)")
    print(f"ratio: {ratio:.2f}x (target >= 2x); results identical: {identical}; "
          f"{(rows >= 0).mean():.1%} of points inside a grid")
    record("match", points=args.points, grids=len(index), ours_points_per_s=round(ours_rate),
           sjoin_points_per_s=round(sjoin_rate), ratio=round(ratio, 2), identical=identical)
    if not identical:
        raise SystemExit("results differ from geopandas.sjoin")


if __name__ == "__main__":
    main()
