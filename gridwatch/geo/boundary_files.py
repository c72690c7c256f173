"""Reading boundary files (GeoJSON, GeoPackage, zipped Shapefile) into plain features in
WGS 84, with a problem recorded for everything that cannot be read as it stands."""

import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from gridwatch.errors import BadInput
from gridwatch.geo.crs import WGS84, gcj02_to_wgs84, transform

LEVELS = ("township", "village", "grid")
SUFFIXES = (".geojson", ".json", ".gpkg", ".zip", ".shp")
# Magic numbers of files people rename by mistake, to say what the file really is.
_KNOWN_NOT_GEODATA = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"%PDF": "a PDF document",
                      b"GIF8": "a GIF image", b"\xd0\xcf\x11\xe0": "an Office document"}


@dataclass
class Feature:
    """One boundary feature as read, before checks."""

    level: str
    source: str  # "grids.geojson #3": where a person finds it
    props: dict
    geom: shapely.Geometry | None
    error: str | None = None  # why the geometry could not be read

    @property
    def code(self) -> str | None:
        value = self.props.get("code")
        return None if value is None or str(value).strip() == "" else str(value).strip()


@dataclass
class ReadResult:
    features: list[Feature] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_boundaries(path: Path, crs: str | None = None, gcj02: bool = False,
                    display_name: str | None = None) -> ReadResult:
    """Every feature of the file (or of each boundary file in a folder) in WGS 84.

    Raises BadInput when the input is not geodata at all, or holds no features."""
    if crs is not None:
        try:
            CRS.from_user_input(crs)
        except CRSError:
            raise BadInput(f"--crs {crs!r} is not a CRS pyproj knows: give it as EPSG:NNNN") from None
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise BadInput(f"{path}: the folder holds no boundary files ({', '.join(SUFFIXES)})")
    result = ReadResult()
    for file in files:
        name = display_name or file.name
        for source, layer in _layers(file, name):
            _read_layer(source, layer, name, crs, gcj02, result)
    if not result.features:
        raise BadInput(f"{display_name or path}: no features: the file holds an empty collection")
    return result


def _layers(file: Path, name: str) -> list[tuple[str, str | None]]:
    """(GDAL source, layer) pairs to read from one file; refuses what is not geodata."""
    with open(file, "rb") as fh:
        head = fh.read(16)
    for magic, what in _KNOWN_NOT_GEODATA.items():
        if head.startswith(magic):
            raise BadInput(f"{name} is {what}, not geodata: give a GeoJSON, a GeoPackage or a zipped Shapefile")
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(file) as zf:
                shps = sorted(n for n in zf.namelist() if n.lower().endswith(".shp") and not n.startswith("__MACOSX"))
        except zipfile.BadZipFile as exc:
            raise BadInput(f"{name} is a damaged zip ({exc}); zip the Shapefile again and send the whole "
                           f"file") from None
        if not shps:
            raise BadInput(f"{name}: the zip holds no .shp file; a zipped Shapefile needs its .shp, .shx and .dbf "
                           f"(and .prj for the CRS)")
        return [(f"/vsizip/{file}/{shp}", None) for shp in shps]
    try:
        layers = pyogrio.list_layers(str(file))
    except Exception:
        raise BadInput(f"{name} is not geodata GDAL can read: give a GeoJSON, a GeoPackage or a zipped "
                       f"Shapefile") from None
    return [(str(file), str(layer)) for layer, _type in layers]


def _level_hint(name: str) -> str:
    """The level a file or layer name suggests: 'townships.geojson' holds townships."""
    lower = name.lower()
    if "township" in lower or "town" in lower:
        return "township"
    if "village" in lower or "communit" in lower:
        return "village"
    return "grid"


def _read_layer(source: str, layer: str | None, name: str, crs: str | None, gcj02: bool,
                result: ReadResult) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            meta, _fids, wkbs, field_data = pyogrio.raw.read(source, layer=layer)
        except Exception as exc:
            raise BadInput(f"{name}: cannot read it as geodata: {exc}") from None
    label = name if layer in (None, Path(name).stem) else f"{name}:{layer}"
    fields = [str(f) for f in meta["fields"]]
    file_crs = meta.get("crs")
    src_crs = crs or file_crs
    if crs and file_crs and CRS.from_user_input(crs) != CRS.from_user_input(file_crs):
        result.warnings.append(f"{label}: the file says {file_crs}; using {crs} as --crs asks")
    if src_crs is None:
        src_crs = WGS84
        result.warnings.append(f"{label}: no CRS in the file; assuming {WGS84} (lon/lat). Pass --crs if not.")
    src = CRS.from_user_input(src_crs)
    if gcj02 and not src.is_geographic:
        raise BadInput(f"{label}: --gcj02 needs lon/lat input, but the file is in {src_crs}")
    hint = _level_hint(layer or name)
    if wkbs is None:
        raise BadInput(f"{label}: the layer has no geometry column")
    features = []
    for i, wkb in enumerate(wkbs):
        props = {k: _plain(field_data[j][i]) for j, k in enumerate(fields)}
        level = str(props.pop("level", None) or hint).lower()
        if level not in LEVELS:
            result.errors.append(f"{label} #{i}: level {level!r} is not one of {', '.join(LEVELS)}")
            continue
        feature = Feature(level=level, source=f"{label} #{i}", props=props, geom=None)
        if wkb is None:
            feature.error = "no geometry"
        else:
            try:
                feature.geom = shapely.from_wkb(wkb)
            except shapely.errors.GEOSException as exc:
                feature.error = (f"unreadable polygon ({exc}); a ring needs at least 4 positions, "
                                 f"the last equal to the first")
        features.append(feature)
    result.features += features
    _to_wgs84([f for f in features if f.geom is not None], src, gcj02)


def _to_wgs84(features: list[Feature], src: CRS, gcj02: bool) -> None:
    """Range-check in the source CRS (where swapped or projected numbers are recognisable),
    then reproject to WGS 84 (and undo GCJ-02)."""
    if not features:
        return
    geoms = np.array([f.geom for f in features])
    if src.is_geographic:
        bounds = shapely.bounds(geoms)
        bad = (np.abs(bounds[:, [0, 2]]) > 180).any(axis=1) | (np.abs(bounds[:, [1, 3]]) > 90).any(axis=1)
        if bad.any():  # one message for the layer, so that it is reported once for all
            b = bounds[bad]
            message = _range_message((b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()))
            for f in np.array(features)[bad]:
                f.error = message
                f.geom = None
        geoms = geoms[~bad]
        features = list(np.array(features)[~bad])
    if not features:
        return
    geoms = transform(geoms, src.to_string(), WGS84)
    if gcj02:
        geoms = gcj02_to_wgs84(geoms)
    for f, g in zip(features, geoms, strict=True):
        f.geom = g


def _range_message(b) -> str:
    """Why coordinates (bounds of the features concerned) are not lon/lat, and what to do."""
    minx, miny, maxx, maxy = b
    msg = f"coordinates outside lon/lat range (x {minx:.6g}..{maxx:.6g}, y {miny:.6g}..{maxy:.6g})"
    if max(abs(minx), abs(maxx)) <= 90 and max(abs(miny), abs(maxy)) <= 180:
        return msg + ": lon and lat look swapped; GeoJSON wants [lon, lat]"
    largest = max(abs(minx), abs(maxx), abs(miny), abs(maxy))
    if largest > 1000:
        # Metres of a projected CRS, or degrees times a power of ten (some exports do that):
        # the numbers alone cannot tell, and only the first is mended by --crs.
        k = next((k for k in range(3, 13) if max(abs(minx), abs(maxx)) / 10 ** k <= 180
                  and max(abs(miny), abs(maxy)) / 10 ** k <= 90), 13)
        return (msg + f": these are metres of a projected CRS (EPSG:3857? a UTM zone? pass --crs EPSG:NNNN), or "
                      f"lon/lat times 10^{k} (x {minx / 10 ** k:.6g}..{maxx / 10 ** k:.6g}, y {miny / 10 ** k:.6g}.."
                      f"{maxy / 10 ** k:.6g}: divide them in the file; --crs cannot)")
    return msg


def _plain(value):
    """Field values as JSON-friendly Python values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
