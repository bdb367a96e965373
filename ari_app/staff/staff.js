// What every staff page (console, dashboard, reports) shares: the session, a sign-in form
// with clear messages, JSON calls with the session's CSRF token, and the live event stream.
"use strict";
const Staff = (() => {
  let current = null;        // the session: {user, role, operator, csrf}
  const expiredHandlers = [];

  class ApiError extends Error {
    constructor(status, errorId, message, field) {
      super(message);
      this.status = status; this.errorId = errorId; this.field = field;
    }
  }

  async function parse(response) {
    const type = response.headers.get("Content-Type") || "";
    const body = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const e = typeof body === "object" && body ? body : {};
      throw new ApiError(response.status, e.error_id || "http-" + response.status,
                         e.message || String(body || response.statusText), e.field);
    }
    return body;
  }

  async function session() {
    try {
      current = await parse(await fetch("/api/session", {credentials: "same-origin"}));
    } catch (e) {
      current = null;
      if (e.errorId === "session-expired") return {expired: true};
      if (e.status !== 401) throw e;
    }
    return current;
  }

  async function signIn(user, password) {
    current = await parse(await fetch("/api/session", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({user, password})}));
    return current;
  }

  async function signOut() {
    await fetch("/api/session", {method: "DELETE", credentials: "same-origin"});
    current = null;
  }

  async function api(method, path, body) {
    const headers = {"Accept": "application/json"};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && current) headers["X-CSRF-Token"] = current.csrf;
    const response = await fetch(path, {method, headers, credentials: "same-origin",
                                        body: body === undefined ? undefined : JSON.stringify(body)});
    try {
      return await parse(response);
    } catch (e) {
      if (e.errorId === "session-expired" || e.errorId === "unauthorized") {
        current = null;
        expiredHandlers.forEach(h => h(e));
      }
      throw e;
    }
  }

  // Live call events (an operator gets only their own calls'); EventSource reconnects by
  // itself. onEvent(event object: name, call_id, at, rule, old, new, operator, data);
  // onState("live" | "reconnecting").
  function events(onEvent, onState) {
    const source = new EventSource("/api/events?named=0");
    source.onopen = () => onState && onState("live");
    source.onerror = () => onState && onState("reconnecting");
    source.onmessage = m => onEvent(JSON.parse(m.data));
    return {source, close: () => source.close()};
  }

  // A sign-in form in `container`; `onSignedIn(session)` once in. `why` explains why it shows.
  // A form already there is kept (only its reason changes): several requests failing with
  // the session's end must not wipe what the person is typing.
  function signInForm(container, onSignedIn, why) {
    let form = container.querySelector("form.signin");
    if (form) {
      form.querySelector(".why").textContent = why || "";
      form.onSignedIn = onSignedIn;
      return;
    }
    container.innerHTML = `
      <form class="signin" autocomplete="on">
        <h2>Sign in</h2>
        <p class="why" role="status"></p>
        <label>User <input id="signin-user" name="username" autocomplete="username" required></label>
        <label>Password <input id="signin-password" name="password" type="password"
               autocomplete="current-password" required></label>
        <button id="signin-button" type="submit">Sign in</button>
        <p id="signin-error" class="error" role="alert"></p>
      </form>`;
    form = container.querySelector("form");
    form.onSignedIn = onSignedIn;
    const error = container.querySelector("#signin-error");
    container.querySelector(".why").textContent = why || "";
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      error.textContent = "";
      try {
        const s = await signIn(form.username.value, form.password.value);
        form.password.value = "";  // kept in the page for the next time: never the password
        form.querySelector(".why").textContent = "";
        form.onSignedIn(s);
      } catch (e) {
        error.textContent = e.errorId === "wrong-credentials"
          ? "Wrong user name or password. Please try again."
          : e.message;
        form.password.value = "";
        form.password.focus();
      }
    });
    form.username.focus();
  }

  // Show the page once signed in (as one of `roles`), else the form with the reason.
  async function gate(container, roles, onSignedIn) {
    const show = why => signInForm(container, s => {
      if (roles && !roles.includes(s.role)) {
        show(`This page is for ${roles.join(" or ")}s; you are signed in as ${s.role}.`);
        return;
      }
      onSignedIn(s);
    }, why);
    expiredHandlers.push(e => show(e.errorId === "session-expired"
      ? "Your session has expired. Please sign in again."
      : "You are signed out. Please sign in again."));
    let s;
    try { s = await session(); } catch (e) { show(e.message); return; }
    if (s && s.expired) { show("Your session has expired. Please sign in again."); return; }
    if (!s) { show(""); return; }
    if (roles && !roles.includes(s.role)) {
      show(`This page is for ${roles.join(" or ")}s; you are signed in as ${s.role}.`);
      return;
    }
    onSignedIn(s);
  }

  const get = () => current;
  return {ApiError, session, signIn, signOut, api, events, signInForm, gate, current: get,
          onExpired: h => expiredHandlers.push(h)};
})();
