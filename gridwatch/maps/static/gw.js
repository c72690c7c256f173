// What every map page shares: its data (one JSON block the server wrote), escaping, the
// county's clock, the layer control and legends that follow their layers.
(function () {
  "use strict";

  var ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};

  // Text from data, made safe to put in HTML (a grid named <img ...> shows as text).
  function esc(value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, function (c) { return ENTITIES[c]; });
  }

  // The page's data: what the server put in <script type="application/json" id="gw-data">.
  function pageData() {
    return JSON.parse(document.getElementById("gw-data").textContent);
  }

  // Times on the county's clock, to the minute: "27 Nov 14:05".
  function clock(timeZone) {
    var format = new Intl.DateTimeFormat("en-GB", {timeZone: timeZone, day: "numeric", month: "short",
                                                   hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
    return function (iso) {
      if (!iso) return "";
      var parts = {};
      format.formatToParts(new Date(iso)).forEach(function (p) { parts[p.type] = p.value; });
      return parts.day + " " + parts.month + " " + parts.hour + ":" + parts.minute;
    };
  }

  // A span of time in words: "40 min", "2 h 10 min", "3 d 4 h".
  function span(ms) {
    var minutes = Math.max(0, Math.round(Math.abs(ms) / 60000));
    var days = Math.floor(minutes / 1440), hours = Math.floor(minutes % 1440 / 60), rest = minutes % 60;
    if (days) return days + " d" + (hours ? " " + hours + " h" : "");
    if (hours) return hours + " h" + (rest ? " " + rest + " min" : "");
    return rest + " min";
  }

  // A deadline from now: "due in 40 min", "overdue by 2 h 10 min".
  function due(iso, now) {
    var left = Date.parse(iso) - (now || Date.now());
    return left >= 0 ? "due in " + span(left) : "overdue by " + span(left);
  }

  // The colour of the highest step of a ramp ([[threshold, colour], ...]) that n reaches.
  function ramp(steps, n) {
    var colour = steps[0][1];
    steps.forEach(function (s) { if (n >= s[0]) colour = s[1]; });
    return colour;
  }

  var SMALL_SCREEN = "(max-width: 700px)";

  // The page's map, its layer control (folded away on a small screen, where open it would
  // cover the page's panel) and its legend, whose sections show only while their layer does.
  function setUp(data) {
    var map = window[data.map];
    var overlays = {};
    (data.layers || []).forEach(function (l) { overlays[l.name] = window[l.id]; });
    var small = window.matchMedia(SMALL_SCREEN).matches;
    var control = Object.keys(overlays).length ?
      L.control.layers(null, overlays, {collapsed: small}).addTo(map) : null;
    function legends() {
      document.querySelectorAll(".gw-legend [data-layer]").forEach(function (section) {
        var layer = window[section.getAttribute("data-layer")];
        section.hidden = !(layer && map.hasLayer(layer));
      });
    }
    map.on("overlayadd overlayremove", legends);
    legends();
    return {map: map, control: control, time: clock(data.timezone)};
  }

  window.gw = {esc: esc, pageData: pageData, clock: clock, span: span, due: due, ramp: ramp, setUp: setUp};
})();
