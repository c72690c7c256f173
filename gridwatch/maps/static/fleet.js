// The command room's video fleet: a line saying how many camera streams run, are stalled or
// have no detector, opening to a table of each stream (its host, frame rate, last frame,
// error). It starts from the page's data and follows GET /video/fleet at the fleet's
// heartbeat.
(function () {
  "use strict";
  var data = gw.pageData();
  var box = document.getElementById("gw-fleet");
  var time = gw.clock(data.timezone);
  var STATES = {};
  data.vocab.stream_states.forEach(function (s) { STATES[s.key] = s; });

  function cell(text, title) {
    return "<td" + (title ? ' title="' + gw.esc(title) + '"' : "") + ">" + gw.esc(text) + "</td>";
  }

  function show(fleet) {
    box.hidden = fleet.cameras.length === 0;
    document.getElementById("gw-fleet-summary").innerHTML = "video: " + data.vocab.stream_states.map(function (s) {
      var n = fleet.states[s.key] || 0;
      return '<span class="gw-fleet-state" style="color:' + (n && s.key !== "running" ? s.colour : "inherit") +
        '">' + n + " " + gw.esc(s.label) + "</span>";
    }).join(" · ") + " · " + fleet.hosts.filter(function (h) { return h.live; }).length + " host(s)";
    document.getElementById("gw-fleet-rows").innerHTML = fleet.cameras.map(function (c) {
      var s = STATES[c.state];
      return "<tr>" + cell(c.name + " (" + c.camera_id + ")") +
        '<td><span class="gw-swatch" style="background:' + s.colour + '"></span>' + gw.esc(s.label) + "</td>" +
        cell(c.host || "") + cell(c.fps == null ? "" : c.fps.toFixed(1)) +
        cell(time(c.last_frame_at), c.last_frame_at) + cell(c.error || "") + "</tr>";
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
