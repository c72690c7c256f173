// The command room's video fleet: a line saying how many camera streams run, are stalled or
// have no detector, opening to a table of each stream (its host, frame rate, last frame,
// error). It starts from the page's data and follows GET /video/fleet at the fleet's
// heartbeat.
(function () {
  "use strict";
  var data = gw.pageData();
  var box = document.getElementById("gw-fleet");
  var time = gw.clock(data.timezone);  // the last frame's time, on hovering its age
  var STATES = {};
  data.vocab.stream_states.forEach(function (s) { STATES[s.key] = s; });

  // Direction overrides a host put in its text would turn what it says around ("evil" shown as
  // "live"): they go, the text stays.
  var OVERRIDES = /[\u202A-\u202E\u2066-\u2069]/g;

  function cell(text, title, wide) {
    return "<td" + (wide ? ' class="gw-wide"' : "") + (title ? ' title="' + gw.esc(title) + '"' : "") + ">" +
      gw.esc(String(text).replace(OVERRIDES, "")) + "</td>";
  }

  // How long ago the last frame came, as of the host's last word: "live" within a heartbeat
  // (a host reports once a heartbeat), else "40 s ago", "12 min ago".
  function age(seconds, heartbeat) {
    if (seconds == null) return "none yet";
    if (seconds <= heartbeat + 2) return "live";
    return (seconds < 120 ? Math.round(seconds) + " s" : gw.span(seconds * 1000)) + " ago";
  }

  // "2 hosts, 5 of 5 slots in use": whether streams without a detector wait for a host or a slot.
  function hosts(fleet) {
    var live = fleet.hosts.filter(function (h) { return h.live; });
    var slots = live.reduce(function (n, h) { return n + h.slots; }, 0);
    var used = live.reduce(function (n, h) { return n + h.cameras.length; }, 0);
    return live.length + (live.length === 1 ? " host" : " hosts") +
      (live.length ? ", " + used + " of " + slots + " slots in use" : "");
  }

  function show(fleet) {
    box.hidden = fleet.cameras.length === 0;
    document.getElementById("gw-fleet-summary").innerHTML = "video: " + data.vocab.stream_states.map(function (s) {
      var n = fleet.states[s.key] || 0;
      return '<span class="gw-fleet-state" style="color:' + (n && s.key !== "running" ? s.colour : "inherit") +
        '">' + n + " " + gw.esc(s.label) + "</span>";
    }).join(" · ") + " · " + hosts(fleet);
    document.getElementById("gw-fleet-rows").innerHTML = fleet.cameras.map(function (c) {
      var s = STATES[c.state];
      return "<tr>" + cell(c.name + " (" + c.camera_id + ")") +
        '<td><span class="gw-swatch" style="background:' + s.colour + '"></span>' + gw.esc(s.label) + "</td>" +
        cell(c.host || "", null, true) + cell(c.fps == null ? "" : c.fps.toFixed(1), null, true) +
        cell(c.state === "no_detector" ? "" : age(c.frame_age_s, fleet.heartbeat_s), time(c.last_frame_at)) +
        cell(c.error || "") + "</tr>";
    }).join("");
  }

  show(data.fleet);
  if (!data.live) return;  // a saved page shows the fleet as it was
  setInterval(function () {
    fetch("/video/fleet", {credentials: "same-origin"}).then(function (r) {
      if (r.ok) return r.json().then(show);
    }).catch(function () {});
  }, data.fleet.heartbeat_s * 1000);
})();
