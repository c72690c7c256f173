"""gridwatch: a county's governance grids on a map, and camera alerts routed to the teams that act on them."""

__version__ = "0.1.0"
