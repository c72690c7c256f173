// /field: a team's phone. Its assignments with the next step of each (acknowledge, on scene,
// resolve with a note and a photo, feedback), a small map with where the team is, reports of
// what it finds, and the on/off duty switch: on duty, with the page open, the phone's position
// goes to dispatch every half minute; off duty, nothing is sent. Everything goes through the
// API, as any client would; new assignments arrive on the stream with a sound and a buzz.
(function () {
  "use strict";

  var data = gw.pageData(), v = data.vocab, esc = gw.esc, time = gw.clock(data.timezone);
  var team = data.team, teamId = team.id;
  var position = null;        // the phone's latest fix: {lon, lat, at}
  var known = null;           // the assignments seen so far (null until the first load)
  var tracking = null;        // {watch, timer} while on duty
  var reportPoint = null;     // a point tapped on the map for a report
  var shownWork = "";         // the assignments the map was last fitted to
  var $ = function (id) { return document.getElementById(id); };

  function label(type) {
    var t = data.types.filter(function (x) { return x.type === type; })[0];
    return t ? t.label : type;
  }
  function words(s) { return String(s || "").replace(/_/g, " "); }

  // messages float at the bottom of the screen, over whatever is scrolled there; a tap closes one
  function say(text, bad) {
    var box = $("gf-message");
    box.textContent = text || "";
    box.className = "gf-message" + (bad ? " gf-bad" : "");
    box.hidden = !text;
  }
  $("gf-message").addEventListener("click", function () { say(""); });

  function api(method, path, body, type) {
    var init = {method: method, credentials: "same-origin", headers: {Accept: "application/json"}};
    if (body !== undefined) {
      init.headers["Content-Type"] = type || "application/json";
      init.body = type ? body : JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (text) {
        var json = text ? JSON.parse(text) : null;
        if (!r.ok) throw {status: r.status, detail: json && json.detail || r.statusText};
        return json;
      });
    });
  }

  // -- the small map ----------------------------------------------------------------------
  var map = L.map("gf-map", {zoomControl: true, attributionControl: false});
  var outlines = L.geoJSON(data.outlines, {style: {color: "#666", weight: 1, fill: false}, interactive: false})
    .addTo(map);
  var base = team.geometry.coordinates;
  if (outlines.getLayers().length) map.fitBounds(outlines.getBounds());
  else map.setView([base[1], base[0]], 13);
  var me = L.circleMarker([base[1], base[0]], {radius: 8, color: "#fff", weight: 3, fillOpacity: 1,
                                                fillColor: v.team_colours[team.properties.status]})
    .addTo(map).bindTooltip("you");
  var work = L.layerGroup().addTo(map);
  var tapped = null;
  map.on("click", function (e) {
    if (!document.querySelector("#gf-report [name=where][value=map]").checked) return;
    reportPoint = {lon: e.latlng.lng, lat: e.latlng.lat};
    if (tapped) tapped.setLatLng(e.latlng);
    else tapped = L.marker(e.latlng).addTo(map).bindTooltip("to report");
  });

  // metres between two lon/lat points (haversine; the county is small enough)
  function metres(a, b) {
    var r = Math.PI / 180, dLat = (b.lat - a.lat) * r, dLon = (b.lon - a.lon) * r;
    var h = Math.pow(Math.sin(dLat / 2), 2) +
      Math.cos(a.lat * r) * Math.cos(b.lat * r) * Math.pow(Math.sin(dLon / 2), 2);
    return 2 * 6371000 * Math.asin(Math.sqrt(h));
  }

  // -- assignments --------------------------------------------------------------------------
  function steps(p) {  // the actions a team takes on its own assignment, from this state
    return v.actions.filter(function (a) {
      return a.team && a.from.indexOf(p.status) >= 0 &&
        (a.feedback_given === null || a.feedback_given === !!p.feedback_at);
    });
  }

  // an assignment's colour on the map, by its next deadline (the command room's colours)
  function colour(p) {
    var left = p.next_due ? Date.parse(p.next_due) - Date.now() : Infinity;
    var key = p.overdue || left < 0 ? "overdue" : left < v.soon_s * 1000 ? "soon" : "ontime";
    return v.deadline_states.filter(function (s) { return s.key === key; })[0].colour;
  }

  function dueText(what, due, done) {
    if (done || !due) return "";
    var left = Date.parse(due) - Date.now();
    return '<span class="' + (left < 0 ? "gf-late" : left < v.soon_s * 1000 ? "gf-soon" : "") + '">' +
      esc(what) + " " + esc(gw.due(due)) + "</span>";
  }

  function card(f, fresh) {
    var p = f.properties, c = f.geometry.coordinates, here = {lon: c[0], lat: c[1]};
    var far = position ? (metres(position, here) / 1000).toFixed(1) + " km away · " : "";
    var coords = here.lat.toFixed(5) + ", " + here.lon.toFixed(5);
    var buttons = steps(p).map(function (a) {
      return '<button type="button" data-step="' + esc(a.name) + '" data-id="' + esc(p.id) + '">' + esc(a.label) +
        "</button>";
    }).join("");
    // the next step first: that is what the patrol opens the page for
    return '<article class="gf-card' + (fresh ? " gf-new" : "") + '" data-incident="' + esc(p.id) + '">' +
      "<h3>" + esc(label(p.type)) + ' <span class="gf-status">' + esc(words(p.status)) + "</span></h3>" +
      "<p>" + esc(p.grid_name) + " · " + esc(p.village_name) + ", " + esc(p.township_name) +
      (p.origin === v.origins[1] ? " · field report" : "") + "</p>" +
      "<p>" + [dueText("contact", p.contact_due, p.contacted_at), dueText("resolve", p.resolve_due, p.resolved_at)]
        .filter(Boolean).join(" · ") + "</p>" +
      '<div class="gf-steps">' + buttons + '</div><div class="gf-step-form"></div>' +
      '<p class="gf-far">' + esc(far) + esc(coords) + "</p>" +
      '<p><a class="gf-link" href="geo:' + esc(coords.replace(" ", "")) + "?q=" + esc(coords.replace(" ", "")) +
      '">navigate</a> <button type="button" data-copy="' + esc(coords) + '">copy position</button></p>' +
      "<p><small>sent " + esc(time(p.assignment.dispatched_at)) + " by " + esc(p.assignment.dispatched_by) +
      "</small></p></article>";
  }

  function refresh() {
    return api("GET", "/patrols/" + encodeURIComponent(teamId) + "/assignments?open=true").then(function (fc) {
      var fresh = {};
      if (known) {
        fc.features.forEach(function (f) { if (!known[f.id]) fresh[f.id] = true; });
        if (Object.keys(fresh).length) alarm();
      }
      known = {};
      fc.features.forEach(function (f) { known[f.id] = true; });
      // a note being written is not wiped by a change elsewhere: the list is drawn again after it is sent
      if (!Object.keys(fresh).length && $("gf-assignments").querySelector(".gf-step-form form")) return;
      $("gf-assignments").innerHTML = fc.features.length ?
        fc.features.map(function (f) { return card(f, fresh[f.id]); }).join("") :
        '<p class="gf-quiet">No assignment now.</p>';
      work.clearLayers();
      fc.features.forEach(function (f) {
        var c = f.geometry.coordinates;
        L.circleMarker([c[1], c[0]], {radius: 9, color: "#222", weight: 2, fillColor: colour(f.properties),
                                      fillOpacity: 0.9}).bindTooltip(esc(label(f.properties.type))).addTo(work);
      });
      // the map shows the way: the team and its work, when that work changes
      var ids = Object.keys(known).sort().join(",");
      if (ids && ids !== shownWork) {
        map.fitBounds(L.featureGroup(work.getLayers().concat([me])).getBounds().pad(0.4), {maxZoom: 16});
      }
      shownWork = ids;
    }, function (err) { say(err.detail, true); });
  }

  function refreshDone() {
    var since = encodeURIComponent(data.today);
    return api("GET", "/patrols/" + encodeURIComponent(teamId) + "/assignments?open=false&since=" + since)
      .then(function (fc) {
        if ($("gf-done").querySelector(".gf-step-form form")) return;  // a note being written stays
        $("gf-done").innerHTML = fc.features.length ? '<ul class="gf-done">' + fc.features.map(function (f) {
          var p = f.properties, feedback = steps(p);  // a resolved one awaits feedback
          return '<li data-incident="' + esc(p.id) + '"><b>' + esc(label(p.type)) + "</b> · " +
            esc(words(p.assignment.cleared_why)) + " " + esc(time(p.assignment.cleared_at)) + "<br><small>" +
            esc(p.grid_name) + "</small>" + (feedback.length ?
              '<div class="gf-steps">' + feedback.map(function (a) {
                return '<button type="button" data-step="' + esc(a.name) + '" data-id="' + esc(p.id) + '">' +
                  esc(a.label) + "</button>";
              }).join("") + '</div><div class="gf-step-form"></div>' : "") + "</li>";
        }).join("") + "</ul>" : '<p class="gf-quiet">nothing yet</p>';
      });
  }

  function everything() { return Promise.all([refresh(), refreshDone()]); }

  // a new assignment: a buzz and a short tone, where the browser allows them
  function alarm() {
    if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
    try {
      var audio = new (window.AudioContext || window.webkitAudioContext)();
      var tone = audio.createOscillator();
      tone.frequency.value = 880;
      tone.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.4);
    } catch (e) { /* no sound here: the card flashes */ }
    say("A new assignment has arrived.");
  }

  // -- the next step ------------------------------------------------------------------------
  function shrink(file) {  // a phone's photo made small for a slow link (the server cleans it again)
    return createImageBitmap(file, {imageOrientation: "from-image"}).then(function (bitmap) {
      var scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.85); });
    });
  }

  function upload(incidentId, file) {
    if (!file) return Promise.resolve(null);
    return shrink(file).then(function (blob) {
      return api("POST", "/incidents/" + encodeURIComponent(incidentId) + "/photos", blob, "image/jpeg");
    });
  }

  function step(action, incidentId, body, photo, form) {
    say("");
    return api("POST", "/incidents/" + encodeURIComponent(incidentId) + "/" + action.path, body)
      .then(function () { return upload(incidentId, photo); })
      .then(function () {
        if (form) form.parentNode.innerHTML = "";  // sent: the card is drawn again from what the server says
        say(action.label + ": done");
        return everything();
      }, function (err) { say(err.detail, true); return everything(); });
  }

  document.body.addEventListener("click", function (e) {
    var copy = e.target.closest("[data-copy]");
    if (copy) {
      if (navigator.clipboard) navigator.clipboard.writeText(copy.getAttribute("data-copy"));
      say("position copied: " + copy.getAttribute("data-copy"));
      return;
    }
    var button = e.target.closest("[data-step]");
    if (!button) return;
    var action = v.actions.filter(function (a) { return a.name === button.getAttribute("data-step"); })[0];
    var incidentId = button.getAttribute("data-id");
    if (!action.note) { step(action, incidentId, {}); return; }
    var box = button.closest("[data-incident]").querySelector(".gf-step-form");
    box.innerHTML = '<form class="gf-form"><label>' + esc(action.label) + ': what was done?<textarea name="note" ' +
      'required maxlength="4000"></textarea></label>' + (action.name === "resolve" ?
      '<label>Photo (optional) <input type="file" name="photo" accept="image/jpeg,image/*" capture="environment">' +
      "</label>" : "") + '<button class="gf-big">Send</button></form>';
    var form = box.querySelector("form");
    form.note.focus();
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      step(action, incidentId, {note: form.note.value}, form.photo && form.photo.files[0], form);
    });
  });

  // -- reports from the field ---------------------------------------------------------------
  $("gf-report").addEventListener("submit", function (e) {
    e.preventDefault();
    var form = e.target, where = form.querySelector("[name=where]:checked").value;
    var point = where === "map" ? reportPoint : position;
    if (!point) {
      say(where === "map" ? "tap the map where it is first" :
          "where you are is not known yet: allow the location, or choose 'a point I tap on the map'", true);
      return;
    }
    say("");
    api("POST", "/incidents", {type: form.type.value, lon: point.lon, lat: point.lat, note: form.note.value})
      .then(function (f) {
        return upload(f.id, form.photo.files[0]).then(function () {
          say("Reported: incident " + f.id + " in " + f.properties.grid_name + ".");
          form.reset();
          if (tapped) { map.removeLayer(tapped); tapped = null; reportPoint = null; }
        });
      }, function (err) { say(err.detail, true); });
  });

  // -- duty and position ----------------------------------------------------------------------
  function fix(pos) {
    position = {lon: pos.coords.longitude, lat: pos.coords.latitude, at: new Date(pos.timestamp).toISOString()};
    me.setLatLng([position.lat, position.lon]);
    $("gf-where").textContent = "where you are: " + position.lat.toFixed(5) + ", " + position.lon.toFixed(5) +
      " (±" + Math.round(pos.coords.accuracy) + " m)";
  }

  function send() {
    if (!position) return;
    api("POST", "/patrols/" + encodeURIComponent(teamId) + "/positions", position)
      .catch(function (err) { say("position not sent: " + err.detail, true); });
  }

  function track(on) {
    if (on && !tracking && navigator.geolocation) {
      tracking = {
        watch: navigator.geolocation.watchPosition(function (pos) {
          var first = !position;
          fix(pos);
          if (first) send();
        }, function (err) { say("no position from this phone: " + err.message, true); },
        {enableHighAccuracy: true, maximumAge: 10000}),
        timer: setInterval(send, data.ping_every_s * 1000)
      };
    } else if (!on && tracking) {
      navigator.geolocation.clearWatch(tracking.watch);
      clearInterval(tracking.timer);
      tracking = null;
    }
  }

  $("gf-duty").addEventListener("change", function (e) {
    var on = e.target.checked;
    api("POST", "/patrols/" + encodeURIComponent(teamId) + "/duty", {on_duty: on}).then(function (f) {
      $("gf-status").textContent = words(f.properties.status);
      me.setStyle({fillColor: v.team_colours[f.properties.status]});
      track(on);
      say(on ? "On duty: your position goes to dispatch while this page is open." :
          "Off duty: nothing is sent, and no one can send you.");
    }, function (err) { e.target.checked = !on; say(err.detail, true); });
  });

  // -- live ---------------------------------------------------------------------------------
  if (data.live && window.EventSource) {
    var due = null;
    var source = new EventSource("/incidents/stream?lastEventId=" + encodeURIComponent(data.since));
    source.onopen = function () { $("gf-live").textContent = "live"; };
    source.onerror = function () { $("gf-live").textContent = "reconnecting"; };
    source.addEventListener("incident", function () {
      if (!due) due = setTimeout(function () { due = null; everything(); }, 300);
    });
    source.addEventListener("team", function (e) {
      var f = JSON.parse(e.data);
      if (f.id !== teamId) return;
      $("gf-status").textContent = words(f.properties.status);
      me.setStyle({fillColor: v.team_colours[f.properties.status]});
    });
  }
  setInterval(function () { if (known) refresh(); }, 60000);  // deadlines count down
  everything();
  track($("gf-duty").checked);
  window.gw.field = {refresh: everything};
})();
