"""The pages' vocabularies, in one place: statuses and escalation levels (imported from the
modules that own them), deadline states, and the colours and ramps every map and legend
uses. Templates get them once, as JSON (`vocab()`); the scripts read them from there."""

from gridwatch.alerts.deadlines import LEVELS
from gridwatch.alerts.grouping import OPEN
from gridwatch.alerts.incidents import ACTIONS, FINISHED, ORIGINS, STATUSES
from gridwatch.api.auth import ROLES
from gridwatch.video.leases import StreamState

# An incident's deadline state on the map, most urgent first: (key, colour, legend label).
DEADLINE_STATES = [("overdue", "#d7301f", "overdue"), ("soon", "#fc8d59", "due within the hour"),
                   ("ontime", "#1a9850", "on time")]
# "soon": the next deadline falls within this many seconds.
SOON_S = 3600
# Resolved incidents stay on the command room's map while their feedback is overdue.
SHOWN_WHEN_OVERDUE = ("resolved",)
OPEN_RAMP = [(0, "#ffffff", "none"), (1, "#fee5d9", "1"), (2, "#fcae91", "2-3"), (4, "#fb6a4a", "4-6"),
             (7, "#cb181d", "7 or more")]
TEAM_COLOURS = {"available": "#2b83ba", "busy": "#7b3294", "off_duty": "#9a9a9a"}
UNASSIGNED_COLOUR = "#000000"
# A camera stream of the video fleet: (state, colour, label).
STREAM_STATES = [(StreamState.RUNNING, "#1a9850", "running"), (StreamState.STARTING, "#4575b4", "starting"),
                 (StreamState.STALLED, "#d4600f", "stalled"), (StreamState.NO_DETECTOR, "#d7301f", "no detector")]
HOTSPOT_BINS = [(3, "#d7191c", "hot, 99 %"), (2, "#fc8d59", "hot, 95 %"), (1, "#fee090", "hot, 90 %"),
                (0, "#ffffff", "not significant"), (-1, "#e0f3f8", "cold, 90 %"), (-2, "#91bfdb", "cold, 95 %"),
                (-3, "#4575b4", "cold, 99 %")]
INCIDENT_RAMP = [(0, "#ffffff"), (1, "#fff5eb"), (5, "#fdd0a2"), (20, "#fd8d3c"), (50, "#d94801"), (100, "#7f2704")]
# The heat layers' colours from few to many alerts (leaflet.heat and heatmap.js both take it).
HEAT_GRADIENT = {0.2: "#2c7bb6", 0.45: "#abd9e9", 0.65: "#ffffbf", 0.85: "#fdae61", 1.0: "#d7191c"}


def ramp_colour(value: float, ramp) -> str:
    """The colour of the highest step of `ramp` ((threshold, colour, ...) rows) that value reaches."""
    colour = ramp[0][1]
    for threshold, c, *_ in ramp:
        if value >= threshold:
            colour = c
    return colour


def vocab() -> dict:
    """Everything a page's script needs to name and colour what it draws, as JSON-ready data."""
    return {
        "statuses": list(STATUSES),
        "open": list(OPEN),
        "finished": list(FINISHED),
        "origins": list(ORIGINS),
        "shown_when_overdue": list(SHOWN_WHEN_OVERDUE),
        "levels": list(LEVELS),
        "deadline_states": [{"key": k, "colour": c, "label": label} for k, c, label in DEADLINE_STATES],
        "soon_s": SOON_S,
        "open_ramp": [[t, c] for t, c, _ in OPEN_RAMP],
        "team_colours": TEAM_COLOURS,
        "unassigned_colour": UNASSIGNED_COLOUR,
        # what each action needs: the statuses it may start from, the least role, a note
        "actions": [{"name": name, "path": name.replace("_", "-"), "label": name.replace("_", " ").capitalize(),
                     "from": list(a.allowed_from), "role": a.role, "note": a.note_required, "team": a.team,
                     "feedback_given": a.feedback_given}
                    for name, a in ACTIONS.items()],
        "roles": list(ROLES),
        "stream_states": [{"key": s.value, "colour": c, "label": label} for s, c, label in STREAM_STATES],
    }
