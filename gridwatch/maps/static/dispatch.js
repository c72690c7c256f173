// The command room's side panel: the dispatcher's queue (open incidents, the most urgent
// deadline first, filtered by township, type and status; the alerts outside every grid) and
// one incident or alert at a time, with exactly the actions the signed-in key's role may take
// from its state. The server stays the judge: a refusal shows its problem's detail here.
// Everything goes through the API, as any client would; text from data is escaped (gw.esc).
(function () {
  "use strict";

  var room = gw.room, data = room.data, v = data.vocab, esc = gw.esc, time = room.time;
  var me = data.me || {role: "viewer", name: ""};
  var side = document.getElementById("gw-side");
  var OPEN = {}, TYPES = {}, DEPARTMENTS = {};
  v.open.forEach(function (s) { OPEN[s] = true; });
  data.types.forEach(function (t) { TYPES[t.type] = t; });
  data.departments.forEach(function (d) { DEPARTMENTS[d[0]] = d[1]; });
  var LIST_ROWS = 200;  // beyond this the filters narrow it down: a list of thousands helps no one
  // the deadline colours, from the one vocabulary, for the styles (gridwatch.css) to use
  v.deadline_states.forEach(function (s) {
    document.documentElement.style.setProperty("--gw-" + s.key, s.colour);
  });

  function rank(role) { return v.roles.indexOf(role); }
  function may(role) { return rank(me.role) >= rank(role); }
  // what this key may do with an incident in this state (the server checks again)
  function offered(p) {
    return v.actions.filter(function (a) {
      return a.from.indexOf(p.status) >= 0 && may(a.role) &&
        (a.feedback_given === null || a.feedback_given === !!p.feedback_at);
    });
  }
  function label(type) { return TYPES[type] ? TYPES[type].label : type; }
  function words(s) { return String(s || "").replace(/_/g, " "); }

  // -- talking to the API ---------------------------------------------------------------
  function api(method, path, body) {
    var init = {method: method, credentials: "same-origin", headers: {Accept: "application/json"}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (text) {
        var json = text ? JSON.parse(text) : null;
        if (!r.ok) throw {status: r.status, detail: json && json.detail || r.statusText, problem: json};
        return json;
      });
    });
  }

  // -- the frame: the queue, and one incident or alert --------------------------------------
  side.hidden = false;
  // the panel took the map's right side: fit the county into what is left
  var county = room.map.getBounds();
  room.map.invalidateSize();
  room.map.fitBounds(county);
  var ring = L.circleMarker([0, 0], {radius: 16, color: "#1f4e79", weight: 3, fill: false, interactive: false});
  function mark(latlng) {  // which marker the panel shows
    ring.setLatLng(latlng);
    if (!room.map.hasLayer(ring)) ring.addTo(room.map);
  }
  side.innerHTML =
    '<nav class="gw-tabs"><button type="button" data-tab="list" class="on">Queue</button>' +
    '<button type="button" data-tab="detail" disabled>Incident</button>' +
    '<span class="gw-me">' + esc(me.name) + " · " + esc(me.role) + "</span></nav>" +
    '<section id="gw-list"></section><section id="gw-detail" hidden></section>';
  var list = side.querySelector("#gw-list"), detail = side.querySelector("#gw-detail");
  var tabs = side.querySelectorAll(".gw-tabs button");
  function tab(name) {
    tabs.forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-tab") === name); });
    list.hidden = name !== "list";
    detail.hidden = name !== "detail";
  }
  tabs.forEach(function (b) {
    b.addEventListener("click", function () { tab(b.getAttribute("data-tab")); });
  });

  // -- the queue ------------------------------------------------------------------------
  var filters = {township: "", type: "", status: "", origin: ""};
  list.innerHTML =
    '<form class="gw-filters">' +
    select("township", "whole county", data.townships) +
    select("type", "all types", data.types.map(function (t) { return [t.type, t.label]; })) +
    select("status", "open and late", v.open.concat(v.shown_when_overdue).map(function (s) {
      return [s, OPEN[s] ? words(s) : words(s) + " (feedback, close)"];
    })) +
    select("origin", "cameras and field", v.origins.map(function (o) { return [o, "from the " + o]; })) +
    '</form><div class="gw-rows" id="gw-incident-rows"></div><h3 id="gw-queue-title"></h3>' +
    '<div class="gw-rows" id="gw-alert-rows"></div>';
  function select(name, all, options) {
    return '<select name="' + name + '"><option value="">' + esc(all) + "</option>" +
      options.map(function (o) { return '<option value="' + esc(o[0]) + '">' + esc(o[1]) + "</option>"; }).join("") +
      "</select>";
  }
  list.querySelector("form").addEventListener("change", function (e) {
    filters[e.target.name] = e.target.value;
    refreshList();
  });

  function deadlineBadge(p, now) {
    if (!p.next_due) return '<span class="gw-due">no deadline</span>';
    var late = Date.parse(p.next_due) < now, soon = Date.parse(p.next_due) - now < v.soon_s * 1000;
    return '<span class="gw-due gw-' + (late || p.overdue ? "overdue" : soon ? "soon" : "ontime") + '">' +
      esc(gw.due(p.next_due, now)) + "</span>";
  }

  // resolved incidents are on the map only while their feedback is late; the queue asks the
  // API for all of them (feedback to give, or to close), the most urgent first
  var resolved = [];
  function fetchResolved() {
    var q = "/incidents?sort=due&limit=" + LIST_ROWS + "&status=" + encodeURIComponent(filters.status) +
      (filters.township ? "&township=" + encodeURIComponent(filters.township) : "") +
      (filters.type ? "&type=" + encodeURIComponent(filters.type) : "") +
      (filters.origin ? "&origin=" + encodeURIComponent(filters.origin) : "");
    api("GET", q).then(function (fc) {
      resolved = fc.features.map(function (f) { return f.properties; });
      drawList();
    }, function (err) { say(err.detail, true); });
  }

  function drawList() {
    var now = Date.now();
    var shownHere = !filters.status || OPEN[filters.status];
    var rows = (shownHere ? Object.keys(room.incidents.all).map(function (id) { return room.incidents.all[id].p; })
                          : resolved)
      .filter(function (p) {
        return (!filters.township || p.township_code === filters.township) &&
          (!filters.type || p.type === filters.type) && (!filters.status || p.status === filters.status) &&
          (!filters.origin || p.origin === filters.origin);
      })
      .sort(function (a, b) {
        var x = a.next_due ? Date.parse(a.next_due) : Infinity, y = b.next_due ? Date.parse(b.next_due) : Infinity;
        return x - y || a.id - b.id;
      });
    var shown = rows.slice(0, LIST_ROWS);
    list.querySelector("#gw-incident-rows").innerHTML = shown.map(function (p) {
      var g = room.grids.byCode[p.grid_code];
      return '<button type="button" class="gw-row' + (p.id === current.id ? " on" : "") + '" data-incident="' +
        esc(p.id) + '">' + deadlineBadge(p, now) + " <b>" + esc(label(p.type)) + "</b> · " + esc(words(p.status)) +
        (p.origin === v.origins[1] ? " · field report" : "") + "<br><small>" +
        esc(g ? g.properties.name : p.grid_code) + " · " + esc(p.team_id ? teamName(p.team_id) : "no team") +
        (p.team_suggested ? " (suggested)" : "") + "</small></button>";
    }).join("") + (rows.length > shown.length ?
      '<p class="gw-more">' + (rows.length - shown.length) + " more: narrow the filters</p>" : "") +
      (rows.length ? "" : '<p class="gw-more">nothing to do here</p>');
    var alerts = room.queue.all();
    list.querySelector("#gw-queue-title").textContent = "Alerts outside every grid: " + alerts.length;
    list.querySelector("#gw-alert-rows").innerHTML = alerts.map(function (f) {
      var p = f.properties;
      return '<button type="button" class="gw-row" data-alert="' + esc(f.id) + '"><b>' + esc(label(p.type)) +
        "</b> · camera " + esc(p.camera_id) + "<br><small>" + esc(time(p.occurred_at)) + " · nearest grid " +
        esc(gridName(p.nearest_grid_code)) + "</small></button>";
    }).join("");
  }

  list.addEventListener("click", function (e) {
    var row = e.target.closest(".gw-row");
    if (!row) return;
    if (row.hasAttribute("data-incident")) open(Number(row.getAttribute("data-incident")), true);
    else openAlert(room.queue.all().filter(function (f) {
      return String(f.id) === row.getAttribute("data-alert");
    })[0]);
  });

  function gridName(code) {
    var g = room.grids.byCode[code];
    return g ? g.properties.name + " (" + code + ")" : code;
  }

  function teamName(id) {
    var t = data.teams.filter(function (x) { return x.id === id; })[0];
    return t ? t.name + " (" + id + ")" : id;
  }

  // -- one incident ---------------------------------------------------------------------
  var current = {id: null, p: null, message: null};

  function open(id, pan) {
    current = {id: id, p: null, message: null};
    tabs[1].disabled = false;
    tabs[1].textContent = "Incident " + id;
    tab("detail");
    detail.innerHTML = "<p>loading incident " + esc(id) + " …</p>";
    var drawn = room.incidents.all[id];
    if (drawn) {
      mark(drawn.marker.getLatLng());
      if (pan) room.map.panTo(drawn.marker.getLatLng());
    }
    reload();
    drawList();
  }

  function reload() {
    var id = current.id;
    return api("GET", "/incidents/" + encodeURIComponent(id)).then(function (f) {
      if (current.id !== id) return;
      current.p = f.properties;
      if (current.message && !current.message.bad) current.message = null;  // what was done is now shown
      // a form being filled in (a note, the teams to choose from) is not wiped by a change
      // elsewhere; the server judges the action against the state it has then
      if (detail.querySelector("#gw-form form, #gw-form table")) return;
      drawDetail();
    }, function (err) { say(err.detail, true); });
  }

  function say(message, bad) {
    current.message = message ? {text: message, bad: !!bad} : null;
    var box = detail.querySelector(".gw-message");
    if (box) {
      box.textContent = message || "";
      box.className = "gw-message" + (bad ? " gw-bad" : "");
      box.hidden = !message;
    } else if (message) {
      detail.innerHTML = '<p class="gw-message' + (bad ? " gw-bad" : "") + '" role="alert">' + esc(message) + "</p>";
    }
  }

  function deadline(what, due, doneAt, stateKey, p, now) {
    var state = p[stateKey];
    if (doneAt) {
      return "<li>" + esc(what) + ': <span class="gw-' + (state === "missed" ? "overdue" : "ontime") + '">' +
        esc(state === "missed" ? "late" : "met") + "</span>, " + esc(time(doneAt)) + "</li>";
    }
    if (!due) return "<li>" + esc(what) + ": once resolved</li>";
    var left = Date.parse(due) - now;
    var cls = left < 0 || state === "missed" ? "overdue" : left < v.soon_s * 1000 ? "soon" : "ontime";
    return "<li>" + esc(what) + ': <span class="gw-countdown gw-' + cls + '" data-due="' + esc(due) + '">' +
      esc(gw.due(due, now)) + "</span> (" + esc(time(due)) + ")</li>";
  }

  function drawDetail() {
    var p = current.p, now = Date.now();
    if (!p) return;
    var html = [];
    html.push("<h2>" + esc(label(p.type)) + ' <span class="gw-status">' + esc(words(p.status)) + "</span></h2>");
    html.push('<p class="gw-message' + (current.message && current.message.bad ? " gw-bad" : "") +
              '" role="alert"' + (current.message ? "" : " hidden") + ">" +
              esc(current.message ? current.message.text : "") + "</p>");
    html.push('<p>Incident ' + esc(p.id) + (p.origin === v.origins[1] ? " · reported from the field" : " · from cameras") +
      '<br>Grid <a href="/maps/grids/' + encodeURIComponent(p.grid_code) + '">' + esc(p.grid_name) + " (" +
      esc(p.grid_code) + ")</a><br>" + esc(p.village_name) + ", " + esc(p.township_name) +
      "<br>First seen " + esc(time(p.first_seen)) + ", last " + esc(time(p.last_seen)) + " · " +
      esc(p.alert_count) + " alert(s)<br>" +
      (p.escalation_level > 0 ? "Escalated to " + esc(v.levels[p.escalation_level]) : "Not escalated") + "</p>");
    html.push("<h3>1-3-1</h3><ul class=\"gw-deadlines\">" +
      deadline("contact", p.contact_due, p.contacted_at, "contact_state", p, now) +
      deadline("resolution", p.resolve_due, p.resolved_at, "resolve_state", p, now) +
      deadline("feedback", p.feedback_due, p.feedback_at, "feedback_state", p, now) + "</ul>");
    html.push("<h3>Team</h3><p>" + (p.team_id ? esc(teamName(p.team_id)) +
      (p.team_suggested ? ' <span class="gw-suggested">suggested, not sent yet</span>' : "") : "none") +
      (p.team_reason ? "<br><small>" + esc(p.team_reason) + "</small>" : "") + "</p>");
    var open = p.assignments.filter(function (a) { return !a.cleared_at; })[0];
    if (open) {
      html.push("<p><small>sent " + esc(time(open.dispatched_at)) + " by " + esc(open.dispatched_by) +
        (open.acknowledged_at ? " · acknowledged " + esc(time(open.acknowledged_at)) : "") +
        (open.on_scene_at ? " · on scene " + esc(time(open.on_scene_at)) : "") + "</small></p>");
    }
    html.push(actionsHtml(p));
    html.push('<div class="gw-form" id="gw-form"></div>');
    var pictures = p.alerts.filter(function (a) { return a.snapshot; }).slice(0, 6).map(function (a) {
      return '<a href="/alerts/' + encodeURIComponent(a.alert_id) + '/snapshot" target="_blank"><img alt="snapshot of alert ' +
        esc(a.alert_id) + '" src="/alerts/' + encodeURIComponent(a.alert_id) + '/snapshot" loading="lazy"></a>';
    }).concat(p.photos.map(function (ph) {
      return '<a href="' + esc(ph.href) + '" target="_blank"><img alt="photo ' + esc(ph.n) + '" src="' +
        esc(ph.href) + '" loading="lazy"></a>';
    }));
    if (pictures.length) html.push('<h3>Pictures</h3><div class="gw-thumbs">' + pictures.join("") + "</div>");
    html.push(departmentsHtml(p));
    html.push("<h3>History</h3><table class=\"gw-history\">" + p.history.map(function (h) {
      return "<tr><td>" + esc(time(h.at)) + "</td><td>" + esc(h.actor) + "</td><td>" + esc(words(h.action)) +
        (h.team_id && h.action === "dispatch" ? "<br><small>to " + esc(teamName(h.team_id)) + "</small>" : "") +
        (h.from !== h.to && h.to ? "<br><small>" + esc(words(h.from || "")) + " → " + esc(words(h.to)) + "</small>" :
         "") + "</td><td>" + esc(h.note || "") + "</td></tr>";
    }).join("") + "</table>");
    detail.innerHTML = html.join("");
  }

  function actionsHtml(p) {
    var sent = p.assignments.some(function (a) { return !a.cleared_at; });
    var buttons = offered(p).map(function (a) {
      return '<button type="button" class="gw-act" data-action="' + esc(a.name) + '">' +
        esc(a.name === "dispatch" && sent ? "Reassign" : a.label) + "</button>";
    });
    if (may("dispatcher") && v.finished.indexOf(p.status) < 0) {
      buttons.push('<button type="button" class="gw-act" data-action="whistle">Whistle departments</button>');
    }
    return buttons.length ? '<div class="gw-actions">' + buttons.join("") + "</div>" :
      '<p class="gw-more">Nothing this key (' + esc(me.role) + ") may do now.</p>";
  }

  function departmentsHtml(p) {
    if (!p.departments.length) return "";
    return "<h3>Whistled departments</h3><ul class=\"gw-departments\">" + p.departments.map(function (d) {
      var left = Date.parse(d.due_at) - Date.now();
      var cls = d.state === "missed" || (!d.reported_at && left < 0) ? "overdue" :
        d.reported_at || left >= v.soon_s * 1000 ? "ontime" : "soon";
      return "<li>" + esc(d.name) + ': <span class="gw-' + cls + '">' +
        esc(d.reported_at ? "reported " + time(d.reported_at) + (d.state === "missed" ? " (late)" : "") :
            gw.due(d.due_at)) + "</span>" + (d.report ? "<br><small>" + esc(d.report) + "</small>" : "") +
        (!d.reported_at && may("operator") ? ' <button type="button" class="gw-act" data-action="report" ' +
         'data-department="' + esc(d.department) + '">Reported…</button>' : "") + "</li>";
    }).join("") + "</ul>";
  }

  detail.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-action]");
    if (!button || !current.p) return;
    var name = button.getAttribute("data-action");
    var action = v.actions.filter(function (a) { return a.name === name; })[0];
    if (name === "dispatch") recommend();
    else if (name === "whistle") whistleForm();
    else if (name === "report") reportForm(button.getAttribute("data-department"));
    else if (action.note) noteForm(action);
    else act(action, {});
  });

  function form(html, onSubmit) {
    var box = detail.querySelector("#gw-form");
    box.innerHTML = "<form>" + html + ' <button type="button" data-cancel>Back</button></form>';
    var f = box.querySelector("form");
    f.querySelector("[data-cancel]").addEventListener("click", function () { box.innerHTML = ""; });
    f.addEventListener("submit", function (e) { e.preventDefault(); onSubmit(f); });
    var first = f.querySelector("textarea, input, select");
    if (first) first.focus();
    return f;
  }

  function noteForm(action, extra) {
    form('<label>' + esc(action.label) + ": what was done?<textarea name=\"note\" required maxlength=\"4000\">" +
         "</textarea></label><button>" + esc(action.label) + "</button>", function (f) {
      act(action, Object.assign({note: f.note.value}, extra || {}));
    });
  }

  function act(action, body) {
    say("");
    return api("POST", "/incidents/" + encodeURIComponent(current.id) + "/" + action.path, body).then(function (f) {
      current.p = f.properties;
      say(action.name === "dispatch" ? "Sent " + teamName(f.properties.team_id) : action.label + ": done");
      drawDetail();
    }, function (err) {
      say(err.detail, true);
      // closing with departments still to report: the dispatcher may confirm it, and the history says so
      if (action.name === "close" && err.problem && err.problem.unreported) {
        var names = err.problem.unreported.map(function (d) { return DEPARTMENTS[d] || d; }).join(", ");
        form("<span>" + esc(names) + " did not report. Close all the same? The history will say you confirmed " +
             "it.</span><button>Close anyway</button>", function () {
          act(action, Object.assign({}, body, {confirm: true}));
        });
      }
    });
  }

  function recommend() {
    var box = detail.querySelector("#gw-form");
    box.innerHTML = "<p>finding teams …</p>";
    api("GET", "/patrols/recommend?limit=10&incident=" + encodeURIComponent(current.id)).then(function (r) {
      var rows = r.candidates.filter(function (c) { return c.team_id !== current.p.team_id || current.p.team_suggested; });
      box.innerHTML = (r.none_available ? '<p class="gw-bad">' + esc(r.none_available) + "</p>" : "") +
        '<table class="gw-teams"><tr><th>Team</th><th>ETA</th><th>km</th><th></th></tr>' +
        rows.map(function (c) {
          return '<tr class="gw-' + esc(c.status) + '"><td><b>' + esc(c.name) + "</b> (" + esc(c.team_id) + ")<br>" +
            "<small>" + esc(c.reason) + "</small></td><td>" + esc(Math.round(c.eta_min)) +
            " min</td><td>" + esc((c.distance_m / 1000).toFixed(1)) + '</td><td><button type="button" ' +
            'data-team="' + esc(c.team_id) + '" data-busy="' + (c.needs_override ? "1" : "") + '">' +
            (c.needs_override ? "Send anyway (second assignment)" : "Send") + "</button></td></tr>";
        }).join("") + '</table><button type="button" data-cancel>Back</button>';
      box.querySelector("[data-cancel]").addEventListener("click", function () { box.innerHTML = ""; });
      box.querySelectorAll("button[data-team]").forEach(function (b) {
        b.addEventListener("click", function () {
          var dispatch = v.actions.filter(function (a) { return a.name === "dispatch"; })[0];
          act(dispatch, {team_id: b.getAttribute("data-team"), override: !!b.getAttribute("data-busy")});
        });
      });
    }, function (err) { box.innerHTML = ""; say(err.detail, true); });
  }

  function whistleForm() {
    var p = current.p, defaults = TYPES[p.type] ? TYPES[p.type].departments : [];
    var done = {};
    p.departments.forEach(function (d) { done[d.department] = true; });
    form('<fieldset><legend>Departments that must report</legend>' + data.departments.map(function (d) {
      return '<label class="gw-check"><input type="checkbox" name="department" value="' + esc(d[0]) + '"' +
        (defaults.indexOf(d[0]) >= 0 && !done[d[0]] ? " checked" : "") + (done[d[0]] ? " disabled" : "") + "> " +
        esc(d[1]) + "</label>";
    }).join("") + '</fieldset><label>Report within <input type="number" name="hours" value="24" min="1" ' +
    'max="720" step="1"> hours</label><label>Note <input name="note" maxlength="4000"></label>' +
    "<button>Whistle</button>", function (f) {
      var chosen = Array.prototype.filter.call(f.querySelectorAll("[name=department]"), function (c) {
        return c.checked && !c.disabled;
      }).map(function (c) { return c.value; });
      say("");
      api("POST", "/incidents/" + encodeURIComponent(current.id) + "/whistle",
          {departments: chosen, hours: Number(f.hours.value), note: f.note.value || null}).then(function (r) {
        current.p = r.properties;
        say("whistled");
        drawDetail();
      }, function (err) { say(err.detail, true); });
    });
  }

  function reportForm(department) {
    form("<label>" + esc(DEPARTMENTS[department] || department) + ' reported: what did it do?<textarea name="note" ' +
         'required maxlength="4000"></textarea></label><button>Record the report</button>', function (f) {
      say("");
      api("POST", "/incidents/" + encodeURIComponent(current.id) + "/departments/" +
          encodeURIComponent(department) + "/report", {note: f.note.value}).then(function (r) {
        current.p = r.properties;
        say("report recorded");
        drawDetail();
      }, function (err) { say(err.detail, true); });
    });
  }

  // -- one alert of the unassigned queue ------------------------------------------------------
  function openAlert(f) {
    if (!f) return;
    var p = f.properties;
    current = {id: null, p: null, message: null};
    tabs[1].disabled = false;
    tabs[1].textContent = "Alert " + f.id;
    tab("detail");
    room.map.panTo([f.geometry.coordinates[1], f.geometry.coordinates[0]]);
    mark([f.geometry.coordinates[1], f.geometry.coordinates[0]]);
    var codes = Object.keys(room.grids.byCode).sort();
    detail.innerHTML = "<h2>" + esc(label(p.type)) + ' <span class="gw-status">outside every grid</span></h2>' +
      '<p class="gw-message" role="alert" hidden></p>' +
      "<p>Alert " + esc(f.id) + " · camera " + esc(p.camera_id) + "<br>at " + esc(time(p.occurred_at)) +
      "<br><small>" + esc(p.team_reason) + "</small></p>" +
      (may("operator") ?
        '<form class="gw-form" data-form="assign"><label>Place it in grid <input name="grid" list="gw-grid-codes" ' +
        'required value="' + esc(p.nearest_grid_code || "") + '"></label><datalist id="gw-grid-codes">' +
        codes.map(function (c) {
          return '<option value="' + esc(c) + '">' + esc(room.grids.byCode[c].properties.name) + "</option>";
        }).join("") + "</datalist><button>Place in grid</button></form>" +
        '<form class="gw-form" data-form="dismiss"><label>Or dismiss it: why does it need nothing?' +
        '<textarea name="reason" required maxlength="2000"></textarea></label><button>Dismiss</button></form>' :
        '<p class="gw-more">An operator or dispatcher places it in a grid or dismisses it.</p>');
    detail.querySelectorAll("form").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var assign = form.getAttribute("data-form") === "assign";
        var box = detail.querySelector(".gw-message");
        api("POST", "/alerts/" + encodeURIComponent(f.id) + "/" + (assign ? "assign" : "dismiss"),
            assign ? {grid_code: form.grid.value.trim()} : {reason: form.reason.value}).then(function (r) {
          room.queue.remove(f.id);
          if (assign) open(r.incident_id, true);
          else {
            detail.querySelectorAll("form").forEach(function (f) { f.remove(); });
            box.hidden = false;
            box.className = "gw-message";
            box.textContent = "Dismissed: " + form.reason.value;
          }
        }, function (err) {
          box.hidden = false;
          box.className = "gw-message gw-bad";
          box.textContent = err.detail;
        });
      });
    });
  }

  // -- live: what changes elsewhere shows here --------------------------------------------
  var listDue = null;
  function soon(fn) {  // many changes at once redraw the list once
    if (!listDue) listDue = setTimeout(function () { listDue = null; fn(); }, 300);
  }
  room.on("select", function (id) { open(id, false); });
  room.on("select-alert", openAlert);
  function refreshList() {
    if (filters.status && !OPEN[filters.status]) fetchResolved();
    else drawList();
  }
  room.on("change", function (p) {
    soon(refreshList);
    if (p.id === current.id) reload();
  });
  room.on("queue", function () { soon(drawList); });
  // deadlines count down while the page is open
  setInterval(function () {
    var now = Date.now();
    detail.querySelectorAll(".gw-countdown").forEach(function (el) {
      var due = el.getAttribute("data-due"), left = Date.parse(due) - now;
      el.textContent = gw.due(due, now);
      el.className = "gw-countdown gw-" + (left < 0 ? "overdue" : left < v.soon_s * 1000 ? "soon" : "ontime");
    });
    drawList();
  }, 30000);
  drawList();
  room.panel = {open: open, openAlert: openAlert, list: drawList};
})();
