/* The operator console: signs in through Staff (/static/staff.js), reads GET /api/console
   again on every live event that concerns this operator (debounced), and counts the hold's
   timers every second from the server's absolute times (skew-corrected). */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var view = null;          // the last GET /api/console
  var skew = 0;             // server clock - browser clock, seconds
  var session = null;
  var pending = null;       // the debounced re-fetch
  var holdConfirm = null;   // the call whose next hold past the limit was pressed once
  var warned = {};          // call id -> times "warn the caller" was pressed
  var stream = null;
  var operatorQuery = "";   // admins and supervisors: /console?operator=operator1

  function now() { return Date.now() / 1000 + skew; }

  function text(el, value) { el.textContent = value == null ? "" : String(value); }

  function show(el, on) { el.hidden = !on; }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function when(epoch) {
    return epoch ? new Date(epoch * 1000).toLocaleString() : "";
  }

  function showError(err) {
    var box = $("error");
    if (!err) { show(box, false); text(box, ""); return; }
    var id = err.errorId ? " (" + err.errorId + ")" : "";
    text(box, (err.message || String(err)) + id);
    show(box, true);
  }

  // --- reading the view ------------------------------------------------------------------
  function refetch() {
    if (pending) { return; }
    pending = setTimeout(function () { pending = null; load(); }, 100);
  }

  function load() {
    return Staff.api("GET", "/api/console" + operatorQuery).then(function (data) {
      view = data;
      skew = data.now - Date.now() / 1000;
      render();
    }).catch(failed);
  }

  function failed(err) {
    if (err && err.status === 401) { return; }  // Staff.onExpired shows the sign-in form
    showError(err);
  }

  function act(method, path, body) {
    showError(null);
    return Staff.api(method, path, body).then(function (answer) {
      refetch();
      return answer;
    }).catch(function (err) { failed(err); throw err; });
  }

  function fillSelect(select, items, keep) {
    var before = select.value;
    var key = JSON.stringify(items);
    if (select.dataset.items === key) { return; }
    select.dataset.items = key;
    select.innerHTML = "";
    items.forEach(function (item) {
      var option = document.createElement("option");
      option.value = item.value;
      option.textContent = item.label;
      if (item.disabled) { option.disabled = true; }
      select.appendChild(option);
    });
    if (keep && before) { select.value = before; }
  }

  // --- rendering -----------------------------------------------------------------------------
  function render() {
    var op = view.operator;
    text($("activity"), op.activity);
    var detail = "Logged " + (op.state === "logged_out" ? "out" : "in");
    if (op.state === "paused") { detail = "Paused" + (op.reason ? ": " + op.reason : ""); }
    if (op.registered === false) { detail += " · your phone is not registered"; }
    text($("state-detail"), detail);
    $("login").disabled = op.state !== "logged_out";
    $("logout").disabled = op.state === "logged_out";
    $("pause").disabled = op.state !== "logged_in";
    $("unpause").disabled = op.state !== "paused";
    fillSelect($("pause-reason"), [{value: "", label: "(no reason)"}].concat(
      op.pause_reasons.map(function (r) { return {value: r, label: r}; })), true);
    fillSelect($("hold-reason"), view.hold_reasons.map(function (r) {
      return {value: r, label: r};
    }), true);
    fillSelect($("transfer-target"), view.directory.map(function (e) {
      return {value: e.id, label: e.name + (e.unavailable ? " (" + e.unavailable + ")" : ""),
              disabled: !!e.unavailable};
    }), true);
    if (!$("transfer-mode").dataset.set) {
      $("transfer-mode").value = view.transfer_mode;
      $("transfer-mode").dataset.set = "1";
    }
    renderCall(view.calls[0] || null);
    renderCallbacks(view.callbacks);
    renderVoicemails(view.voicemails);
  }

  function renderCall(call) {
    show($("no-call"), !call);
    show($("call-details"), !!call);
    $("call").dataset.callId = call ? call.call_id : "";
    if (!call) { holdConfirm = null; return; }
    text($("call-number"), call.caller || "unknown");
    text($("call-name"), call.name || (call.card && call.card.name) || "unknown");
    text($("call-department"), call.department || "general line");
    var waitedEnd = call.answered_at || null;
    $("call-waited").dataset.startedAt = call.started_at || "";
    $("call-waited").dataset.answeredAt = waitedEnd || "";
    text($("call-status"), call.shown_status);
    var et = call.etiquette;
    var held = et.on_hold;
    var connected = call.status === "connected";
    $("hold").disabled = !connected;
    $("resume").disabled = !held;
    $("transfer").disabled = !connected;
    var moving = !!call.transfer;
    $("transfer-complete").disabled = !(moving && call.transfer.mode === "attended");
    $("transfer-cancel").disabled = !moving;
    $("supervisor").disabled = !connected;
    $("warn").disabled = !connected;
    var times = Math.max(call.warnings || 0, warned[call.call_id] || 0);
    text($("warn-state"), times === 0 ? "" :
      "The caller was warned once: pressing again ends the call with a goodbye.");
    $("warn").textContent = times === 0 ? "Warn the caller" : "End the call (second warning)";
    text($("transfer-state"), moving ? "Transfer to " + call.transfer.target + " (" +
      call.transfer.mode + "): " + call.transfer.status : "");
    show($("transfer-state"), moving);
    var warning = et.next_hold_warning;
    text($("hold-warning"), warning ? "Careful: " + warning + "." : "");
    show($("hold-warning"), !!warning && !held);
    $("hold").textContent = warning && holdConfirm === call.call_id ? "Hold anyway" : "Hold";
    renderCard(call.card);
    tick();
  }

  function renderCard(card) {
    var groups = $("card-groups");
    groups.innerHTML = "";
    var any = false;
    var titles = [["calls", "Previous calls"], ["callbacks", "Callback requests and outcomes"],
                  ["voicemails", "Voice messages"], ["complaints", "Complaints"],
                  ["surveys", "Survey answers"], ["other", "Other"]];
    if (card) {
      titles.forEach(function (pair) {
        var entries = card[pair[0]] || [];
        if (!entries.length) { return; }
        any = true;
        var h = document.createElement("h4");
        h.textContent = pair[1] + " (" + entries.length + ")";
        var list = document.createElement("ul");
        list.className = "card-" + pair[0];
        entries.slice().reverse().forEach(function (entry) {
          var li = document.createElement("li");
          var extra = Object.keys(entry).filter(function (k) {
            return ["t", "event", "call_id", "request", "voicemail"].indexOf(k) < 0 &&
              entry[k] !== null && entry[k] !== "";
          }).map(function (k) { return k + ": " + entry[k]; }).join(", ");
          li.textContent = when(entry.t) + " — " + entry.event + (extra ? " (" + extra + ")" : "");
          list.appendChild(li);
        });
        groups.appendChild(h);
        groups.appendChild(list);
      });
    }
    show($("card-empty"), !any);
  }

  function renderCallbacks(callbacks) {
    var list = $("callbacks");
    list.innerHTML = "";
    if (!callbacks.length) {
      var none = document.createElement("li");
      none.textContent = "None due.";
      list.appendChild(none);
    }
    callbacks.forEach(function (cb) {
      var li = document.createElement("li");
      li.dataset.id = cb.id;
      li.textContent = cb.number + (cb.name ? " (" + cb.name + ")" : "") +
        (cb.topic ? " — " + cb.topic : "") + " — due " + when(cb.window.earliest || cb.next_attempt_at) +
        (cb.window.latest ? ", promised by " + when(cb.window.latest) : "") +
        " — " + cb.status + (cb.attempts ? ", " + cb.attempts + " attempt(s)" : "");
      list.appendChild(li);
    });
  }

  function renderVoicemails(voicemails) {
    var list = $("voicemails");
    var key = JSON.stringify(voicemails.map(function (v) { return [v.id, v.heard]; }));
    if (list.dataset.key === key) { return; }  // never cut a message being played
    list.dataset.key = key;
    list.innerHTML = "";
    if (!voicemails.length) {
      var none = document.createElement("li");
      none.textContent = "No messages.";
      list.appendChild(none);
    }
    voicemails.forEach(function (vm) {
      var li = document.createElement("li");
      li.dataset.id = vm.id;
      li.className = vm.heard ? "heard" : "unheard";
      var label = document.createElement("span");
      label.textContent = (vm.heard ? "" : "New: ") + (vm.caller_name || "unknown") + " " +
        (vm.caller_number || "") + " — " + when(vm.created_at) + " — " +
        Math.round(vm.duration) + " s" + (vm.for_whom ? " — for " + vm.for_whom : "");
      var audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = "/api/voicemails/" + encodeURIComponent(vm.id) + "/audio";
      audio.setAttribute("aria-label", "Play the message from " + (vm.caller_number || "unknown"));
      li.appendChild(label);
      li.appendChild(document.createElement("br"));
      li.appendChild(audio);
      if (!vm.heard) {
        var heard = document.createElement("button");
        heard.type = "button";
        heard.className = "mark-heard";
        heard.textContent = "Mark heard";
        heard.addEventListener("click", function () {
          act("POST", "/api/voicemails/" + encodeURIComponent(vm.id) + "/heard").catch(noop);
        });
        li.appendChild(heard);
      }
      list.appendChild(li);
    });
  }

  // the timers, every second, from the server's absolute times
  function tick() {
    var call = view && view.calls[0];
    if (!call) { return; }
    var t = now();
    var started = call.started_at || t;
    text($("call-waited"), duration((call.answered_at || t) - started) +
      (call.answered_at ? "" : " (still waiting)"));
    var et = call.etiquette, hold = et.hold;
    text($("hold-state"), et.on_hold ? "On hold" + (hold.reason ? " (" + hold.reason + ")" : "") +
      " — " + hold.status.replace(/_/g, " ") : "Not on hold · holds so far: " + et.holds +
      " of " + et.max_holds + " allowed");
    show($("hold-timer"), et.on_hold);
    show($("next-check-in"), et.on_hold);
    show($("way-out"), et.on_hold);
    if (!et.on_hold) { return; }
    text($("hold-timer"), "On hold for " + duration(t - hold.started_at));
    if (hold.next_check_in_at) {
      text($("next-check-in"), "Next check-in in " + Math.max(0, Math.ceil(hold.next_check_in_at - t)) + " s");
    } else {
      text($("next-check-in"), hold.status === "checking_in" ? "Check-in playing now" :
        "No check-in due");
    }
    if (hold.way_out_at) {
      text($("way-out"), "Way out in " + Math.max(0, Math.ceil(hold.way_out_at - t)) + " s");
    } else {
      text($("way-out"), "Way out: " + hold.status.replace(/_/g, " "));
    }
  }

  function noop() {}

  // --- the buttons --------------------------------------------------------------------------
  function callPath(suffix) {
    return "/api/calls/" + encodeURIComponent($("call").dataset.callId) + suffix;
  }

  function operatorPath(action) {
    var endpoint = view.operator.endpoint;  // "PJSIP/operator1": the route takes "operator1"
    return "/api/operators/" + encodeURIComponent(endpoint.split("/").pop()) + "/" + action;
  }

  function wire() {
    $("login").addEventListener("click", function () { act("POST", operatorPath("login")).catch(noop); });
    $("logout").addEventListener("click", function () { act("POST", operatorPath("logout")).catch(noop); });
    $("pause").addEventListener("click", function () {
      var reason = $("pause-reason").value;
      act("POST", operatorPath("pause"), reason ? {reason: reason} : {}).catch(noop);
    });
    $("unpause").addEventListener("click", function () { act("POST", operatorPath("unpause")).catch(noop); });
    $("hold").addEventListener("click", function () {
      var call = view.calls[0];
      if (call.etiquette.next_hold_warning && holdConfirm !== call.call_id) {
        holdConfirm = call.call_id;  // warned before it happens: a second press holds
        $("hold").textContent = "Hold anyway";
        $("hold-warning").focus();
        return;
      }
      holdConfirm = null;
      var minutes = parseInt($("hold-minutes").value, 10);
      var body = {reason: $("hold-reason").value};
      if (minutes) { body.expected_minutes = minutes; }
      act("POST", callPath("/hold"), body).catch(noop);
    });
    $("resume").addEventListener("click", function () { act("DELETE", callPath("/hold")).catch(noop); });
    $("transfer").addEventListener("click", function () {
      act("POST", callPath("/transfer"), {target: $("transfer-target").value,
                                          mode: $("transfer-mode").value}).catch(noop);
    });
    $("transfer-complete").addEventListener("click", function () {
      act("POST", callPath("/transfer/complete")).catch(noop);
    });
    $("transfer-cancel").addEventListener("click", function () { act("DELETE", callPath("/transfer")).catch(noop); });
    $("supervisor").addEventListener("click", function () { act("POST", callPath("/escalate")).catch(noop); });
    $("warn").addEventListener("click", function () {
      var id = $("call").dataset.callId;
      act("POST", callPath("/warn")).then(function () {
        warned[id] = (warned[id] || 0) + 1;
        if (view && view.calls[0]) { renderCall(view.calls[0]); }
      }).catch(noop);
    });
    $("sign-out").addEventListener("click", function () {
      Promise.resolve(Staff.signOut()).then(function () {
        signedOut("You are signed out.");
      });
    });
    $("hold-warning").tabIndex = -1;
    setInterval(tick, 250);
  }

  // --- signing in and out -------------------------------------------------------------------
  function signedIn(who) {
    session = who;
    var wanted = new URLSearchParams(location.search).get("operator");
    operatorQuery = who.role !== "operator" && wanted ? "?operator=" + encodeURIComponent(wanted) : "";
    showError(null);
    show($("signin"), false);
    show($("console"), true);
    show($("sign-out"), true);
    text($("who"), "Signed in as " + who.user + (who.operator ? " (" + who.operator + ")" : ""));
    if (!stream) {
      stream = Staff.events(function (event) {
        // an operator's stream carries only their events; a supervisor's, everybody's
        if (!view || session.role === "operator" || !event.operator ||
            event.operator === view.operator.endpoint) { refetch(); }
      }, function (state) {
        document.body.dataset.live = state;
        text($("live"), state === "live" ? "Live" : "Reconnecting…");
        if (state === "live") { refetch(); }  // whatever happened while it was away
      });
    }
    return load();
  }

  function signedOut(why) {
    session = null;
    view = null;
    if (stream && stream.close) { stream.close(); }
    stream = null;
    show($("console"), false);
    show($("sign-out"), false);
    text($("who"), "");
    showError(null);
    show($("signin"), true);
    if (why !== undefined) { Staff.signInForm($("signin"), signedIn, why); }
  }

  function start() {
    wire();
    // an expired session (any call of the page): the console goes, the sign-in form says why
    Staff.onExpired(function () { signedOut(); });
    Staff.gate($("signin"), null, signedIn);
  }

  start();
})();
