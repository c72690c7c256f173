"""gridwatch: a county's governance grids on a map, and camera alerts routed to the teams that act on them."""

# The one place the version is written: the wheel's metadata, `gridwatch --version`, /health and
# the OpenAPI document all read it.
__version__ = "0.2.0"
