"""The wheel is the whole product. From a copy of the source tree (what git holds, nothing
built or fetched), build a wheelhouse (gridwatch's wheel and every dependency's), install it
with --no-index into a fresh virtualenv without extras, and run it from a folder outside the
source tree: every module imports, every --help works, `db start`, `db migrate`,
`demo load --days 1` and `serve` work, and Chromium draws all 127 grids of the command room
with every asset served by the installed package and no request leaving the machine."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from browser import Watched, login
from conftest import ROOT, Server, auth

from gridwatch import __version__
from gridwatch.maps.assets import packages

PIP = [sys.executable, "-m", "pip"]


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{cmd}: {result.stdout[-2000:]} {result.stderr[-3000:]}"
    return result


def source_copy(to: Path) -> Path:
    """What git holds (committed or not, never what it ignores: no build/, no fetched assets)."""
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted, not yet committed
        target = to / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return to


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """gridwatch installed from a wheelhouse built in this run, with nothing from the index."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = source_copy(tmp / "src")
    wheelhouse = tmp / "wheelhouse"
    run([*PIP, "wheel", "--progress-bar", "off", "--wheel-dir", wheelhouse, src], cwd=tmp)
    venv = tmp / "venv"
    run([shutil.which("python3"), "-m", "venv", venv])
    run([venv / "bin" / "pip", "install", "--progress-bar", "off", "--no-index", "--find-links", wheelhouse,
         "gridwatch"], cwd=tmp)
    where = tmp / "elsewhere"  # the working directory: outside the source tree
    where.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "GRIDWATCH_HOME": str(tmp / "home"), "HOME": str(tmp)}
    package = Path(run([venv / "bin" / "python", "-c", "import gridwatch; print(gridwatch.__file__)"],
                       cwd=where, env=env).stdout.strip()).parent
    return {"tmp": tmp, "wheelhouse": wheelhouse, "venv": venv, "bin": venv / "bin", "where": where, "env": env,
            "package": package}


def gridwatch(installed: dict, *args: str) -> subprocess.CompletedProcess:
    return run([installed["bin"] / "gridwatch", *args], cwd=installed["where"], env=installed["env"])


def test_the_wheel_carries_everything_the_product_serves(installed):
    wheel = next(installed["wheelhouse"].glob("gridwatch-*.whl"))
    assert wheel.name.startswith(f"gridwatch-{__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ["gridwatch/maps/assets.json", "gridwatch/maps/vendor/.manifest", "gridwatch/geo/regions.json",
                   "gridwatch/maps/templates/command_room.html", "gridwatch/maps/static/gw.js",
                   "gridwatch/db/migrations/0001_boundaries.sql",
                   *(f"gridwatch/demo/boundaries/{level}.geojson" for level in ("townships", "villages", "grids"))]:
        assert needed in names, needed
    for spec in packages().values():
        for target in spec["files"].values():
            assert any(n.startswith(f"gridwatch/maps/vendor/{target}") for n in names), target
    # the installed package is not the checkout
    assert ROOT not in installed["package"].parents and installed["venv"] in installed["package"].parents


def test_a_plain_install_imports_every_module_and_every_command_has_help(installed):
    """Nothing the shipped code imports comes only with the test extra."""
    result = subprocess.run([installed["bin"] / "python", ROOT / "tests" / "plain_install.py"],
                            cwd=installed["where"], env=installed["env"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "commands' --help: ok" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def served(installed):
    """The installed gridwatch's own PostGIS, migrated, with one day of the demo county, served."""
    gridwatch(installed, "db", "start")
    try:
        gridwatch(installed, "db", "migrate")
        gridwatch(installed, "demo", "load", "--days", "1")
        key = (Path(installed["env"]["GRIDWATCH_HOME"]) / "demo-admin.key").read_text().strip()
        server = Server(None, env=installed["env"], command=str(installed["bin"] / "gridwatch"),
                        cwd=installed["where"]).start(timeout=60)
        try:
            yield server, key
        finally:
            server.stop()
    finally:
        gridwatch(installed, "db", "stop")


def test_the_version_is_said_by_the_command_health_openapi_and_the_metadata(installed, served):
    server, _key = served
    said = gridwatch(installed, "--version").stdout.strip()
    metadata = run([installed["bin"] / "python", "-c",
                    "from importlib.metadata import version; print(version('gridwatch'))"],
                   cwd=installed["where"], env=installed["env"]).stdout.strip()
    assert said == f"gridwatch {metadata}" and metadata == __version__
    health = httpx.get(server.url + "/health").json()
    assert health["version"] == metadata and health["assets"] == "ok"
    assert httpx.get(server.url + "/openapi.json").json()["info"]["version"] == metadata


def test_the_installed_command_room_draws_every_grid_from_its_own_assets(installed, served, browser):
    server, key = served
    w = Watched(browser)
    assets = {}
    w.page.on("response", lambda r: assets.__setitem__(r.url, r) if "/maps/static/" in r.url else None)
    try:
        login(w, server, key, "/maps/")
        w.page.wait_for_function("document.querySelectorAll('path.gw-grid').length === 127", timeout=20000)
        w.clean()  # nothing blocked (no request left the machine), nothing failed, no console error
        assert w.page.locator(".gw-assets-missing").count() == 0
        assert any(url.endswith("/leaflet/leaflet.js") for url in assets), list(assets)
        for url, response in assets.items():
            assert response.status == 200, url
            served_file = installed["package"] / "maps" / "vendor" / url.split("/maps/static/", 1)[1].split("?")[0]
            assert response.body() == served_file.read_bytes(), url
    finally:
        w.close()


def test_an_install_without_its_assets_says_so_on_health_and_every_page(installed, served):
    server, key = served
    vendor = installed["package"] / "maps" / "vendor"
    aside = vendor.with_name("vendor-aside")
    vendor.rename(aside)
    try:
        health = httpx.get(server.url + "/health").json()
        assert health["assets"] == "missing", health
        for path, headers in [("/login", {}), ("/docs", {}), ("/maps/", auth(key)), ("/maps/heatmap", auth(key))]:
            r = httpx.get(server.url + path, headers=headers)
            text = " ".join(r.text.split())
            assert r.status_code == 200 and "map assets (Leaflet and its plugins, Swagger UI) are missing" in text, path
    finally:
        aside.rename(vendor)
    assert httpx.get(server.url + "/health").json()["assets"] == "ok"


def test_a_wheel_whose_asset_does_not_match_its_pinned_hash_is_not_built(tmp_path):
    src = source_copy(tmp_path / "src")
    manifest = src / "gridwatch" / "maps" / "assets.json"
    doc = json.loads(manifest.read_text())
    doc["leaflet.heat"]["integrity"] = "sha512-" + "A" * 86 + "=="
    manifest.write_text(json.dumps(doc))
    result = subprocess.run([*PIP, "wheel", "--no-deps", "--progress-bar", "off", "--wheel-dir", str(tmp_path / "out"),
                             str(src)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert "leaflet.heat@0.2.0" in result.stdout + result.stderr and "does not match the hash" in result.stdout + \
        result.stderr, result.stdout[-2000:] + result.stderr[-2000:]
    assert not list(tmp_path.glob("out/*.whl"))
