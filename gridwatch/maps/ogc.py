"""The /ogc documents as pages for a person (f=html): the same links and contents as the JSON,
with the collections or features as a table and the features on a small map."""

import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gridwatch.maps.base import render

PAGE_TYPES = ("application/json", "application/geo+json", "application/schema+json")


def as_page(href: str) -> str:
    """The address of a JSON document's HTML page: the same, with f=html."""
    parts = urlsplit(href)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "f"] + [("f", "html")]
    return urlunsplit(parts._replace(query=urlencode(query)))


def page(home: str, title: str, links: list[dict], crumbs: list[tuple[str, str]] = (), description: str = "",
         meta: str = "", columns: list[str] = (), rows: list[list[tuple[str, str | None]]] = (),
         geojson: dict | None = None) -> str:
    """One page. `crumbs` (title, JSON href) lead back up; `rows` hold (text, JSON href or None)."""
    return render("ogc.html", title=title, description=description, meta=meta, home=as_page(home),
                  crumbs=[{"title": t, "href": as_page(h)} for t, h in crumbs],
                  links=[{**link, "page": as_page(link["href"]) if link["type"] in PAGE_TYPES else link["href"]}
                         for link in links],
                  columns=list(columns),
                  rows=[[{"text": _text(text), "href": as_page(h) if h else None} for text, h in row] for row in rows],
                  geojson=geojson)


def collections_rows(collections: list[dict]) -> list[list[tuple[str, str | None]]]:
    return [[(c["id"], c["links"][0]["href"]), (c["title"], None), (c["description"], None)] for c in collections]


def feature_rows(features: list[dict], names: list[str], items: str) -> list[list[tuple[str, str | None]]]:
    """A row per feature: its id (linking to it), then its properties."""
    return [[(f["id"], f"{items}/{f['id']}"), *((f["properties"].get(n), None) for n in names)] for f in features]


def _text(value) -> str:
    """A cell: nothing for null, a measure to one decimal, a time to the second in UTC."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, str) and _TIME.match(value):
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")
