/* The staff console of one window (/window/{n}): call, recall, start, finish, no-show,
   transfer, reinstate, pause and resume, with keyboard shortcuts. Every action shows the
   server's answer; every error is shown as the server worded it. Staff sign in with their
   login and password: the server keeps the session in an HttpOnly cookie (no token in the
   page or its storage), a reload resumes it, and a 401 on any action (the session ended, the
   account was disabled) brings the sign-in form back with the server's words. The
   applications panel (applications.js) hears of sign-in, sign-out and application events
   through "kiosq:console" events on the document. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const number = Number(location.pathname.split("/").pop());
  const $ = (id) => document.getElementById(id);
  // person: who the session cookie is (null: nobody); me: the same once allowed at this window
  const state = { person: null, me: null, window: null, services: new Map(), stream: null };
  window.KiosqConsole = state;
  const KEYS = { F1: "call-next", F2: "recall", F3: "start", F4: "finish", F6: "no-show", F8: "pause-resume" };

  function say(text, isError) {
    const m = $("message");
    m.textContent = text;
    m.className = isError ? "error" : "ok";
  }

  function render() {
    const w = state.window;
    if (!w) return;
    K.applyLang();
    $("window-name").textContent = K.name(w);
    $("who").textContent = K.who(state.person);
    const t = w.current;
    $("current-number").textContent = t ? t.number : "—";
    $("current-status").textContent = t ? K.t("status." + t.status) : K.t("console.none");
    $("window-state").textContent = K.t(w.state === "paused" ? "console.state_paused" : "console.state_open");
    $("window-state").classList.toggle("paused", w.state === "paused");
    document.querySelector('[data-action="pause"]').disabled = w.state === "paused";
    document.querySelector('[data-action="resume"]').disabled = w.state !== "paused";
    const waiting = $("waiting");
    waiting.replaceChildren(...w.services.map((code) => {
      const s = state.services.get(code) || { code, waiting: "?" };
      const div = K.el("div", { class: "svc", "data-service": code });
      div.append(K.el("span", null, K.name(s) + " "), K.el("b", { class: "waiting" }, String(s.waiting)));
      return div;
    }));
    // Every other service than the current ticket's own (a transfer there is refused).
    const select = $("transfer-service");
    const chosen = select.value;
    select.replaceChildren(...[...state.services.values()].filter((s) => !t || s.code !== t.service)
      .map((s) => K.el("option", { value: s.code }, s.code + " " + K.name(s))));
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
    tick();
  }

  function tick() {
    const t = state.window && state.window.current;
    const since = t && (t.started_at || t.called_at);
    $("elapsed").textContent = since ? K.elapsedText(Date.now() - Date.parse(since)) : "--:--";
  }

  async function refresh() {
    const [windows, services] = await Promise.all([K.api("/api/windows"), K.api("/api/services")]);
    state.window = windows.find((w) => w.number === number) || null;
    for (const s of services) state.services.set(s.code, s);
    if (!state.window) throw new Error("no window " + number + " in this hall");
    render();
  }
  const refreshSoon = K.debounce(() => refresh().catch((err) => say(err.message, true)), 200);

  async function act(action, body) {
    if (action === "pause-resume") action = state.window.state === "paused" ? "resume" : "pause";
    try {
      const result = await K.api("/api/windows/" + number + "/" + action, { method: "POST", body });
      state.window = result.window;
      const t = result.ticket;
      const transferred = result.events.includes("ticket.transferred");
      say(t ? t.number + " · " + K.t(transferred ? "status.transferred" : "status." + t.status) + (transferred ? " → " + t.service : "")
            : K.t(result.events[0] || ""), false);
      render();
      refreshSoon();
    } catch (err) {
      if (err.status === 401) signedOut(err.message);
      else say(err.message, true);
    }
  }

  // As Token.may_act_at on the server: a supervisor without windows is the hall's duty supervisor.
  function mayActHere(me) {
    if (me.role === "admin") return true;
    if (me.role === "supervisor") return me.windows.length === 0 || me.windows.includes(number);
    return me.role === "staff" && me.windows.includes(number);
  }

  function tell(what, data) {
    document.dispatchEvent(new CustomEvent("kiosq:console", { detail: { what, data } }));
  }

  function onEvent(type, data) {
    if (type.startsWith("application.")) tell("application", data);
    else refreshSoon();
  }

  // Why `me` may not act at this window, or "" when it may.
  function refusalHere(me) {
    if (mayActHere(me)) return "";
    const vars = { name: me.name, login: me.login, role: K.t("role." + me.role), window: number,
                   windows: me.windows.join("、") };
    return K.t(me.windows.length ? "signin.not_here" : "signin.no_windows", vars);
  }

  function signinSay(text, ok) {
    $("signin-message").textContent = text || "";
    $("signin-message").className = ok ? "ok" : "error";
  }

  function showSignIn(message, ok) {
    $("work").classList.add("hidden");
    $("signin-card").classList.remove("hidden");
    signinSay(message, ok);
  }

  // Signed in (just now, or a session resumed on load): the work area, if `me` may act here.
  async function enter(me) {
    const refused = refusalHere(me);
    state.person = me;
    $("who").textContent = K.who(me);
    $("sign-out").classList.remove("hidden");  // to sign this person out, refused here or not
    if (refused) { state.me = null; showSignIn(refused); return; }
    state.me = me;
    signinSay("");
    $("signin-card").classList.add("hidden");
    $("work").classList.remove("hidden");
    await refresh();
    tell("signed-in", { me, window: state.window });
    if (!state.stream) {
      const health = await K.api("/api/health");
      state.stream = K.stream("/api/staff/events", health.last_event_id, onEvent,
                              (ok) => { document.body.dataset.connected = String(ok); },
                              [...K.eventTypes, ...K.applicationEvents]);
    }
  }

  const signIn = K.session.form((me) => enter(me), (text) => signinSay(text));

  // The session is gone on the server (signed out, expired, the account disabled): back
  // to the sign-in form, saying why.
  function signedOut(message, ok) {
    const was = state.me;
    state.me = null; state.person = null;
    // The staff stream is the person's: a new sign-in opens a new one.
    if (state.stream) { state.stream.close(); state.stream = null; }
    $("sign-out").classList.add("hidden");
    $("who").textContent = "";
    showSignIn(message, ok);
    if (was) tell("signed-out");
    if (was && !$("login").value) $("login").value = was.login;
    $("password").value = "";
    $("password").focus();
  }

  async function signOut() {
    try {
      await K.session.signOut();
      signedOut(K.t("signin.signed_out"), true);
    } catch (err) {
      if (err.status === 401) signedOut(err.message);
      else if (state.me) say(err.message, true);
      else signinSay(err.message);
    }
  }

  async function resume() {
    try {
      await enter(await K.session.current());
    } catch (err) {
      // Nobody signed in is no error; a session that ended since is said so.
      showSignIn(err.status === 401 && err.code === "unauthorized" ? "" : err.message);
    }
  }

  state.signedOut = signedOut;
  document.querySelectorAll("[data-action]").forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));
  $("transfer").addEventListener("click", () => act("transfer", { service: $("transfer-service").value }));
  $("reinstate").addEventListener("click", () => act("reinstate", { ticket: $("reinstate-number").value.trim() }));
  $("signin").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", () => { $("who").textContent = K.who(state.person); render(); });
  document.addEventListener("keydown", (e) => {
    if (!KEYS[e.key] || !state.me) return;
    e.preventDefault();
    act(KEYS[e.key]);
  });
  setInterval(tick, 1000);
  K.applyLang();
  resume();
})();
