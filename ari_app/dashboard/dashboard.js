// The supervisor dashboard: signs in with /static/staff.js, draws the snapshot of
// GET /api/dashboard, fetches it again when the live stream (/api/events) says something
// happened (at most a few times a second), and counts the timers itself in between.
(function () {
  "use strict";

  var REFETCH_GAP = 250;      // ms: at most four snapshots a second, however busy the stream
  var FALLBACK_REFRESH = 15000; // ms: a snapshot now and then even when the stream is quiet
  var NEAR_WAY_OUT = 30;      // s: as the server's dashboard/service.py
  var offset = 0;             // server clock - this clock, seconds (from the snapshot's `now`)
  var lastFetch = 0, pending = null, inFlight = false, again = false;

  function now() { return Date.now() / 1000 + offset; }

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k === "cls") node.className = v;
      else node.setAttribute(k, v === true ? "" : v);
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "–";
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m));
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }

  function clock(epoch) {
    if (!epoch) return "–";
    return new Date(epoch * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  }

  function day(epoch) {
    if (!epoch) return "";
    var d = new Date(epoch * 1000);
    var today = new Date();
    return d.toDateString() === today.toDateString() ? "" :
      d.toLocaleDateString([], {month: "short", day: "numeric"}) + " ";
  }

  // a timer counting up from `since` (data-since) or down to `until` (data-until)
  function since(epoch, cls) {
    return el("span", {cls: (cls || "") + " timer", "data-since": epoch}, duration(now() - epoch));
  }
  function until(epoch, cls) {
    return el("span", {cls: (cls || "") + " timer", "data-until": epoch}, duration(epoch - now()));
  }

  function tick() {
    var t = now();
    document.querySelectorAll("[data-since]").forEach(function (n) {
      n.textContent = duration(t - parseFloat(n.getAttribute("data-since")));
    });
    document.querySelectorAll("[data-until]").forEach(function (n) {
      var left = parseFloat(n.getAttribute("data-until")) - t;
      n.textContent = left >= 0 ? duration(left) : "due";
    });
    document.querySelectorAll(".hold[data-way-out]").forEach(function (n) {
      n.classList.toggle("nearing", nearing(parseFloat(n.getAttribute("data-way-out")),
                                            parseFloat(n.getAttribute("data-stretch")), t));
    });
  }

  function nearing(wayOut, stretch, t) {
    if (!wayOut) return false;
    var left = wayOut - t;
    return left <= NEAR_WAY_OUT || (stretch > 0 && left <= stretch / 3);
  }

  function replace(id, nodes) {
    var box = document.getElementById(id);
    box.textContent = "";
    nodes.forEach(function (n) { box.appendChild(n); });
  }

  // --- the snapshot -------------------------------------------------------------------------
  function drawQueues(queues) {
    if (!queues.length) {
      replace("queues", [el("p", {cls: "empty"}, "No queue in the policy.")]);
      return;
    }
    replace("queues", queues.map(function (q) {
      var t = now(), today = q.today || {};
      var share = today.service_level_share;
      var callers = q.waiting.map(function (w) {
        return el("li", {cls: "waiting", "data-call-id": w.id},
                  (w.kind === "callback" ? "callback " : "caller ") ,
                  since(t - w.waited, "wait"));
      });
      var longest = q.waiting.length ? since(t - q.longest_wait, "longest") :
        el("span", {cls: "longest"}, "–");
      var estimate = q.estimate || {};
      var said = estimate.said === "minutes" ? "about " + estimate.minutes + " min" :
        estimate.said === "less-than-a-minute" ? "under a minute" : "no estimate";
      return el("article", {cls: "tile", "data-queue": q.name},
        el("h3", {}, q.name + (q.department ? " (" + q.department + ")" : "")),
        el("div", {}, el("span", {cls: "big waiting-count"}, String(q.waiting.length)),
           " waiting"),
        el("dl", {},
          el("dt", {}, "Longest wait"), el("dd", {}, longest),
          el("dt", {}, "A caller now would wait"), el("dd", {cls: "estimate"}, said),
          el("dt", {}, "Estimate off by (today, mean)"),
          el("dd", {}, today.mean_estimate_error === null || today.mean_estimate_error === undefined
                        ? "–" : duration(today.mean_estimate_error)),
          el("dt", {}, "Answered today"), el("dd", {cls: "answered"}, String(today.answered || 0)),
          el("dt", {}, "Within " + q.service_level + " s"),
          el("dd", {}, share === null || share === undefined ? "–" :
                        Math.round(share * 100) + " %"),
          el("dt", {}, "Abandoned today"), el("dd", {cls: "abandoned"}, String(today.abandoned || 0))),
        callers.length ? el("ol", {cls: "callers"}, ...callers) : null);
    }));
  }

  function drawOperators(operators) {
    var rows = operators.map(function (o) {
      var state = o.state.replace(/_/g, " ") + (o.reason ? " (" + o.reason + ")" : "");
      if (o.wrap_up_until) state += ", wrap-up";
      var holds = o.holds.map(function (h) {
        var box = el("div", {cls: "hold" + (h.nearing_way_out ? " nearing" : ""),
                             "data-call-id": h.call_id, "data-way-out": h.way_out_at,
                             "data-stretch": h.way_out_after},
          "on hold" + (h.reason ? " (" + h.reason + ")" : "") + " ",
          h.started_at ? since(h.started_at) : null,
          h.next_check_in ? el("span", {}, " · check-in in ", until(h.next_check_in)) : null,
          h.way_out_at ? el("span", {}, " · way out in ", until(h.way_out_at, "way-out")) : null);
        return box;
      });
      return el("tr", {"data-operator": o.endpoint},
        el("td", {}, o.endpoint),
        el("td", {cls: "state"}, state + (o.in_call ? ", in a call" : "") + (o.free ? ", free" : "")),
        el("td", {}, o.since ? since(o.since) : "–"),
        el("td", {}, o.registered === false ? "not registered" :
                     o.registered === null ? "unknown" : "registered"),
        el("td", {}, ...(holds.length ? holds : ["–"])));
    });
    var body = document.querySelector("#operators tbody");
    body.textContent = "";
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function drawCallbacks(callbacks) {
    var body = document.querySelector("#callbacks tbody");
    body.textContent = "";
    if (!callbacks.length) {
      body.appendChild(el("tr", {}, el("td", {colspan: 5, cls: "empty"}, "None pending.")));
      return;
    }
    callbacks.forEach(function (c) {
      var w = c.window || {};
      var window_ = w.earliest ? day(w.earliest) + clock(w.earliest) + "–" + clock(w.latest) : "no window";
      body.appendChild(el("tr", {cls: c.late ? "late" : "", "data-callback": c.id},
        el("td", {}, c.number),
        el("td", {}, c.name || ""),
        el("td", {}, window_, c.late ? el("span", {cls: "badge late"}, " late") : null),
        el("td", {}, c.status),
        el("td", {}, String(c.attempts))));
    });
  }

  // drawn again only when the open complaints change: a redraw on every snapshot would stop
  // a recording being played and wipe a resolution being typed
  var shownComplaints = null;
  function drawComplaints(complaints) {
    var key = JSON.stringify(complaints.map(function (c) { return [c.id, c.recorded]; }));
    if (key === shownComplaints) return;
    shownComplaints = key;
    if (!complaints.length) {
      replace("complaints", [el("li", {cls: "empty"}, "None open.")]);
      return;
    }
    replace("complaints", complaints.map(function (c) {
      var resolution = el("input", {type: "text", maxlength: "500", cls: "resolution",
                                    placeholder: "what was done", "aria-label": "what was done"});
      var close = el("button", {type: "button", cls: "close-complaint"}, "Close");
      close.addEventListener("click", function () {
        close.disabled = true;
        Staff.api("POST", "/api/complaints/" + c.id + "/close", {resolution: resolution.value})
          .then(function () { problem(""); refetch(); }, function (err) {
            close.disabled = false;
            problem("Could not close the complaint: " + err.message);
          });
      });
      return el("li", {"data-complaint": c.id},
        (c.caller_name || c.caller_number || "unknown caller") +
        (c.operator ? " about " + c.operator : "") + " · ",
        since(c.created_at), " ago",
        c.recorded ? " · recorded" : "", c.callback_id ? " · callback promised" : "",
        c.recorded ? el("audio", {controls: true, preload: "none",
                                  src: "/api/complaints/" + c.id + "/audio"}) : null,
        resolution, close);
    }));
  }

  // --- the charts: inline SVG ---------------------------------------------------------------
  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    for (var i = 2; i < arguments.length; i++) node.appendChild(
      typeof arguments[i] === "string" ? document.createTextNode(arguments[i]) : arguments[i]);
    return node;
  }

  // bars per hour, one colour per series: [{key, label, colour}]
  function barChart(id, hours, series, unit) {
    var W = 520, H = 180, left = 36, bottom = 20, top = 8;
    var values = [];
    hours.forEach(function (h) { series.forEach(function (s) { values.push(h[s.key] || 0); }); });
    var max = Math.max.apply(null, values.concat([1]));
    var nice = Math.pow(10, Math.floor(Math.log10(max)));
    max = Math.ceil(max / nice) * nice;
    var chart = svg("svg", {viewBox: "0 0 " + W + " " + H, width: "100%", role: "img",
                            "aria-label": series.map(function (s) { return s.label; }).join(", ") +
                                          " per hour", "data-chart": id});
    var plotH = H - bottom - top, slot = (W - left) / hours.length;
    var bar = Math.max(1, (slot - 2) / series.length);
    [0, 0.5, 1].forEach(function (f) {
      var y = top + plotH * (1 - f);
      chart.appendChild(svg("line", {x1: left, x2: W, y1: y, y2: y, stroke: "#eceef2"}));
      chart.appendChild(svg("text", {x: left - 4, y: y + 3, "text-anchor": "end"},
                            String(Math.round(max * f * 10) / 10) + (unit || "")));
    });
    hours.forEach(function (h, i) {
      var x0 = left + i * slot + 1;
      series.forEach(function (s, j) {
        var v = h[s.key] || 0, hgt = plotH * v / max;
        var rect = svg("rect", {x: x0 + j * bar, y: top + plotH - hgt, width: bar,
                                height: hgt, fill: s.colour, "data-hour": h.hour,
                                "data-series": s.key, "data-value": v});
        rect.appendChild(svg("title", {}, h.hour.slice(11) + ":00 " + s.label + ": " + v));
        chart.appendChild(rect);
      });
      if (i % 3 === 0) chart.appendChild(svg("text", {x: x0, y: H - 6}, h.hour.slice(11)));
    });
    var legend = el("div", {cls: "legend"});
    series.forEach(function (s) {
      var swatch = el("i", {});
      swatch.style.background = s.colour;
      legend.appendChild(swatch);
      legend.appendChild(document.createTextNode(s.label));
    });
    replace(id, [chart, legend]);
  }

  function drawCharts(today) {
    barChart("chart-times", today, [
      {key: "mean_wait", label: "wait in queue", colour: "#3b6fd8"},
      {key: "mean_hold", label: "hold", colour: "#e0a800"}], "s");
    barChart("chart-calls", today, [
      {key: "calls", label: "calls", colour: "#5b6272"},
      {key: "answered", label: "answered from a queue", colour: "#1f8a4c"},
      {key: "abandoned", label: "abandoned", colour: "#c0392b"}]);
  }

  function draw(snapshot) {
    offset = snapshot.now - Date.now() / 1000;
    drawQueues(snapshot.queues);
    drawOperators(snapshot.operators);
    drawCallbacks(snapshot.callbacks);
    drawComplaints(snapshot.complaints);
    drawCharts(snapshot.today);
    document.getElementById("board").setAttribute("data-drawn-at", String(snapshot.now));
  }

  function problem(text) {
    var box = document.getElementById("problem");
    box.textContent = text || "";
    box.hidden = !text;
  }

  // --- fetching: debounced, never two at once -------------------------------------------------
  function refetch() {
    if (inFlight) { again = true; return; }
    if (pending) return;
    var wait = Math.max(0, lastFetch + REFETCH_GAP - Date.now());
    pending = setTimeout(function () { pending = null; fetchNow(); }, wait);
  }

  function fetchNow() {
    inFlight = true;
    lastFetch = Date.now();
    return Staff.api("GET", "/api/dashboard").then(function (snapshot) {
      problem("");
      draw(snapshot);
    }, function (err) {
      if (err.status === 401) return;  // Staff shows the sign-in form again, with why
      if (err.status === 403) document.getElementById("board").hidden = true;
      problem(err.status === 403 ? "The dashboard is for supervisors: " + err.message
                                 : "Could not load the dashboard: " + err.message);
    }).then(function () {
      inFlight = false;
      if (again) { again = false; refetch(); }
    });
  }

  function live(state) {
    var badge = document.getElementById("live");
    badge.textContent = state === "live" ? "live" : "reconnecting…";
    badge.classList.toggle("on", state === "live");
    if (state === "live") refetch();  // what happened while the stream was away
  }

  var started = false;
  function start(session) {
    document.getElementById("sign-in").textContent = "";
    document.getElementById("who").textContent = session.user + " (" + session.role + ")";
    document.getElementById("sign-out").hidden = false;
    document.getElementById("board").hidden = false;
    fetchNow();
    if (started) return;
    started = true;
    Staff.events(refetch, live);
    setInterval(tick, 500);
    setInterval(refetch, FALLBACK_REFRESH);
  }

  function signedOut() {
    document.getElementById("board").hidden = true;
    document.getElementById("sign-out").hidden = true;
    document.getElementById("who").textContent = "";
  }

  document.getElementById("sign-out").addEventListener("click", function () {
    Promise.resolve(Staff.signOut()).then(function () { location.reload(); });
  });

  Staff.onExpired(signedOut);
  // the page for supervisors (the bearer token, an admin, has no session); anyone else is
  // told so by the sign-in form
  Staff.gate(document.getElementById("sign-in"), ["supervisor"], start);
})();
