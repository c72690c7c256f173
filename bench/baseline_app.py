"""Baselines measured beside gridwatch in the same run: gridwatch's own app plus

- /baseline/grids/at, answering /grids/at's question with one psycopg query to PostGIS per
  request (same auth, same answer shape), for bench/lookup.sh;
- /baseline/alerts, taking an alert as POST /alerts does (same auth, same validation) and
  committing an empty transaction instead of ingesting it, for bench/ingest.sh: what a
  request that touches the database at all costs on this machine."""

import orjson
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gridwatch.alerts.model import AlertIn
from gridwatch.api.access import INGEST, OPERATOR, VIEWER
from gridwatch.api.app import create_app
from gridwatch.api.deps import Conn
from gridwatch.api.errors import problem
from gridwatch.api.params import Lat, Lon

# The grid covering the point (lowest code), else the nearest grid with its distance in m.
SQL = """
WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS pt)
(SELECT code, name, village_code, township_code, NULL::float8, boundary_version()
   FROM grids, p WHERE ST_Covers(geom, p.pt) ORDER BY code LIMIT 1)
UNION ALL
(SELECT code, name, village_code, township_code,
        ST_Distance(ST_Transform(geom, 32647), ST_Transform(p.pt, 32647)), boundary_version()
   FROM grids, p ORDER BY geom <-> p.pt LIMIT 1)
LIMIT 1
"""


def create() -> FastAPI:
    app = create_app()
    app.state.access["GET /baseline/grids/at"] = VIEWER

    @app.get("/baseline/grids/at")
    def baseline_grid_at(lon: Lon, lat: Lat, conn: Conn) -> Response:
        code, name, village, township, distance, version = conn.execute(SQL, {"lon": lon, "lat": lat}).fetchone()
        if distance is not None:
            return problem(404, f"no grid holds ({lon}, {lat}); the nearest is {code} ({name}), "
                                f"{distance:,.1f} m away", title="Not Found",
                           nearest={"code": code, "name": name, "distance_m": round(distance, 1)},
                           boundary_version=version)
        return Response(orjson.dumps({"lon": lon, "lat": lat, "code": code, "name": name, "village_code": village,
                                      "township_code": township, "boundary_version": version}),
                        media_type="application/json")

    @app.post("/baseline/alerts", status_code=201)
    async def baseline_alert(alert: AlertIn, request: Request) -> Response:
        def commit() -> None:
            with request.app.state.pool.connection() as conn, conn.transaction():
                conn.execute("SELECT 1")

        await run_in_threadpool(commit)
        return Response(orjson.dumps({"alert_id": 0, "event_id": alert.event_id}), status_code=201,
                        media_type="application/json")

    app.state.access["POST /baseline/alerts"] = OPERATOR | INGEST
    return app
