// The command room: incidents by deadline state (the most urgent drawn on top), grids
// shaded by their open incidents, the unassigned queue and the header's counts, all kept
// current from /incidents/stream. Parts: room.incidents (state and drawing), room.grids,
// room.queue, room.header, room.stream; room.on("change", fn) tells other parts (a side
// panel) when an incident was drawn again.
(function () {
  "use strict";

  var data = gw.pageData(), page = gw.setUp(data), v = data.vocab, esc = gw.esc, time = page.time;
  var map = page.map, room = {data: data, map: map, time: page.time, listeners: []};
  var OPEN = {}, LATE_SHOWN = {}, COLOURS = {};
  v.open.forEach(function (s) { OPEN[s] = true; });
  v.shown_when_overdue.forEach(function (s) { LATE_SHOWN[s] = true; });
  v.deadline_states.forEach(function (s) { COLOURS[s.key] = s.colour; });
  var teams = {};
  data.teams.forEach(function (t) { teams[t.id] = t.name; });

  room.on = function (event, fn) { room.listeners.push({event: event, fn: fn}); };
  function emit(event, value) {
    room.listeners.forEach(function (l) { if (l.event === event) l.fn(value); });
  }

  function team(id) {
    if (!id) return "none";
    return teams[id] ? esc(teams[id]) + " (" + esc(id) + ")" : esc(id);
  }

  // -- incidents ------------------------------------------------------------------------
  var layer = window[data.layers_by_role.incidents];
  // one pane per deadline state, the most urgent highest: an overdue incident under newer
  // ones can still be seen and clicked
  v.deadline_states.forEach(function (s, i) {
    map.createPane("gw-" + s.key).style.zIndex = 450 - 10 * i;
  });
  var incidents = {};  // id → {p, marker, state}

  // the deadlines still ahead of an incident: [[what, due], ...]
  function pending(p) {
    var out = [];
    if (!p.contacted_at && p.contact_due) out.push(["contact", p.contact_due]);
    if (!p.resolved_at && p.resolve_due) out.push(["resolve", p.resolve_due]);
    if (p.resolved_at && !p.feedback_at && p.feedback_due) out.push(["feedback", p.feedback_due]);
    return out;
  }

  function state(p, now) {
    if (p.overdue) return "overdue";
    var next = Math.min.apply(null, pending(p).map(function (d) { return Date.parse(d[1]); }));
    if (next < now) return "overdue";
    return next - now < v.soon_s * 1000 ? "soon" : "ontime";
  }

  function shown(p, s) {
    return OPEN[p.status] || (LATE_SHOWN[p.status] && s === "overdue");
  }

  function escalation(p) {
    return p.escalation_level > 0 ? "escalated to " + esc(v.levels[p.escalation_level]) : "not escalated";
  }

  function gridLink(code) {
    if (!code) return "outside every grid";
    var g = room.grids.byCode[code];
    return '<a href="/maps/grids/' + encodeURIComponent(code) + '">' +
      (g ? esc(g.properties.name) + " (" + esc(code) + ")" : esc(code)) + "</a>";
  }

  function popup(p) {
    var now = Date.now(), rows = [];
    rows.push("<b>Incident " + esc(p.id) + "</b>: " + esc(p.type));
    rows.push("status " + esc(p.status.replace(/_/g, " ")));
    rows.push("grid " + gridLink(p.grid_code));
    rows.push("team " + team(p.team_id) + (p.team_suggested ? " (suggested, not sent yet)" : ""));
    rows.push("first seen " + esc(time(p.first_seen)) + ", last " + esc(time(p.last_seen)) +
              " · " + esc(p.alert_count) + " alert(s)");
    rows.push(p.contacted_at ? "contacted " + esc(time(p.contacted_at))
                             : "contact " + esc(gw.due(p.contact_due, now)));
    rows.push(p.resolved_at ? "resolved " + esc(time(p.resolved_at))
                            : "resolution " + esc(gw.due(p.resolve_due, now)));
    if (p.resolved_at) {
      rows.push(p.feedback_at ? "feedback given " + esc(time(p.feedback_at))
                              : "feedback " + esc(gw.due(p.feedback_due, now)));
    }
    rows.push(escalation(p));
    return '<div class="gw-popup">' + rows.join("<br>") + "</div>";
  }

  function tooltip(p) {
    var next = pending(p).sort(function (a, b) { return Date.parse(a[1]) - Date.parse(b[1]); })[0];
    return esc(p.type) + " · " + esc(p.status.replace(/_/g, " ")) + " · " +
      (p.origin === v.origins[1] ? "reported from the field" : esc(p.alert_count) + " alert(s)") +
      "<br>team " + team(p.team_id) + (p.team_suggested ? " (suggested)" : "") + (next ? "<br>" + esc(next[0]) + " " + esc(gw.due(next[1])) : "");
  }

  function draw(p, now) {
    var old = incidents[p.id];
    if (old) { layer.removeLayer(old.marker); delete incidents[p.id]; }
    var s = state(p, now);
    if (!shown(p, s)) return;
    // a report from the field has a dashed ring (no alerts to size it by)
    var field = p.origin === v.origins[1];
    var m = L.circleMarker([p.lat, p.lon], {
      radius: 5 + Math.min(7, p.alert_count), color: "#222", weight: field ? 2 : 1, dashArray: field ? "3 2" : null,
      fillColor: COLOURS[s], fillOpacity: 0.9, pane: "gw-" + s,
      className: "gw-incident gw-" + s + (OPEN[p.status] ? "" : " gw-" + p.status) + (field ? " gw-field" : "")});
    m.bindTooltip(function () { return tooltip(p); });
    m.bindPopup(function () { return popup(p); });
    // a click opens the incident in the side panel (which says all the popup would, and acts)
    m.on("click", function () { m.closePopup(); emit("select", p.id); });
    m.addTo(layer);
    incidents[p.id] = {p: p, marker: m, state: s};
  }

  room.incidents = {
    all: incidents,
    show: function (p) { draw(p, Date.now()); room.grids.restyle(); room.header.count(); emit("change", p); },
    // deadlines pass while the page is open: look again every minute
    review: function () {
      var now = Date.now();
      Object.keys(incidents).forEach(function (id) {
        var i = incidents[id];
        if (state(i.p, now) !== i.state) draw(i.p, now);
      });
      room.grids.restyle();
      room.header.count();
    }
  };

  // -- grids ----------------------------------------------------------------------------
  var grids = window[data.layers_by_role.grids];
  room.grids = {byCode: {}, open: {}, overdue: {}};
  grids.eachLayer(function (l) {
    room.grids.byCode[l.feature.properties.code] = l.feature;
    l.bindTooltip(function (layer) { return gridTip(layer.feature.properties); });
    l.bindPopup(function (layer) {
      var p = layer.feature.properties;
      return gridTip(p) + '<br><a href="/maps/grids/' + encodeURIComponent(p.code) + '">the grid\'s page</a>';
    });
  });

  function gridTip(p) {
    var open = room.grids.open[p.code] || 0, overdue = room.grids.overdue[p.code] || 0;
    return "<b>" + esc(p.name) + "</b> (" + esc(p.code) + ")<br>" + esc(p.village) + ", " + esc(p.township) +
      "<br>open incidents: " + open + (overdue ? " (" + overdue + " overdue)" : "");
  }

  room.grids.restyle = function () {
    var open = {}, overdue = {};
    Object.keys(incidents).forEach(function (id) {
      var i = incidents[id], g = i.p.grid_code;
      if (OPEN[i.p.status]) open[g] = (open[g] || 0) + 1;
      if (i.state === "overdue") overdue[g] = (overdue[g] || 0) + 1;
    });
    room.grids.open = open;
    room.grids.overdue = overdue;
    grids.setStyle(function (f) {
      var n = open[f.properties.code] || 0;
      return {fillColor: gw.ramp(v.open_ramp, n), fillOpacity: n ? 0.6 : 0.05, color: "#555", weight: 0.8};
    });
  };

  // -- the unassigned queue: alerts outside every grid, as the API gives them -------------
  var queue = window[data.layers_by_role.queue];
  room.queue = {
    add: function (f) {
      var c = f.geometry.coordinates, p = f.properties;
      if (p.queue_action) { room.queue.remove(f.id); return; }  // placed in a grid, or dismissed
      var m = L.circleMarker([c[1], c[0]], {radius: 5, weight: 2, color: "#fff", fillColor: v.unassigned_colour,
                                            fillOpacity: 1, className: "gw-unassigned"});
      m.feature = f;
      m.bindTooltip("<b>Unassigned alert</b>: " + esc(p.type) + "<br>camera " + esc(p.camera_id) + "<br>at " +
                    esc(time(p.occurred_at)) + "<br>" + esc(p.team_reason));
      m.on("click", function () { emit("select-alert", f); });
      queue.addLayer(m);
      room.header.count();
      emit("queue", f.id);  // the side panel lists it too
    },
    all: function () { return queue.getLayers().map(function (m) { return m.feature; }); },
    // placed in a grid or dismissed: it leaves the queue
    remove: function (alertId) {
      queue.eachLayer(function (m) { if (m.feature.id === alertId) queue.removeLayer(m); });
      room.header.count();
      emit("queue", alertId);
    }
  };

  // -- teams: status colour and position follow the stream ------------------------------
  var teamLayer = window[data.layers_by_role.teams];
  room.teams = {
    update: function (f) {
      teamLayer.eachLayer(function (m) {
        var p = m.feature.properties;
        if (p.id !== f.id) return;
        p.status = f.properties.status;
        p.position = f.properties.position;
        m.setLatLng([f.geometry.coordinates[1], f.geometry.coordinates[0]]);
        m.setStyle({fillColor: v.team_colours[p.status] || "#999"});
      });
      emit("team", f);
    }
  };

  // -- the header -----------------------------------------------------------------------
  room.header = {
    count: function () {
      var open = 0, overdue = 0, feedback = 0;
      Object.keys(incidents).forEach(function (id) {
        var i = incidents[id];
        if (OPEN[i.p.status]) open += 1;
        if (i.state === "overdue") overdue += 1;
        if (i.state === "overdue" && !OPEN[i.p.status]) feedback += 1;
      });
      set("gw-open-count", open);
      set("gw-overdue-count", overdue);
      set("gw-feedback-count", feedback);
      set("gw-unassigned-count", queue.getLayers().length);
    },
    live: function (text) { set("gw-live", text); }
  };

  function set(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  var now = Date.now();
  data.incidents.forEach(function (f) { draw(f.properties, now); });
  room.grids.restyle();
  data.queued.forEach(room.queue.add);
  room.header.count();
  setInterval(room.incidents.review, 60000);

  // -- the stream -----------------------------------------------------------------------
  if (data.live && window.EventSource && location.protocol.indexOf("http") === 0) {
    var source = new EventSource("/incidents/stream?lastEventId=" + encodeURIComponent(data.since));
    source.onopen = function () { room.header.live("live"); };
    source.onerror = function () { room.header.live("reconnecting"); };
    source.addEventListener("incident", function (e) { room.incidents.show(JSON.parse(e.data).properties); });
    source.addEventListener("unassigned", function (e) { room.queue.add(JSON.parse(e.data)); });
    source.addEventListener("team", function (e) { room.teams.update(JSON.parse(e.data)); });
    room.stream = source;
  }

  window.gw.room = room;
})();
