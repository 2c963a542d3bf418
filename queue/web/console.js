/* The staff console of one window (/window/{n}): call, recall, start, finish, no-show,
   transfer, reinstate, pause and resume, with keyboard shortcuts. Every action shows the
   server's answer; every error is shown as the server worded it. The applications panel
   (applications.js) hears of sign-in, sign-out and application events through
   "kiosq:console" events on the document. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const number = Number(location.pathname.split("/").pop());
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "kiosq.staff.token";
  const state = { token: sessionStorage.getItem(TOKEN_KEY), me: null, window: null, services: new Map(), stream: null };
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
    $("who").textContent = state.me ? K.t("console.signed_in_as") + state.me.name + " · " + K.t("role." + state.me.role) : "";
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
      const result = await K.api("/api/windows/" + number + "/" + action, { method: "POST", token: state.token, body });
      state.window = result.window;
      const t = result.ticket;
      const transferred = result.events.includes("ticket.transferred");
      say(t ? t.number + " · " + K.t(transferred ? "status.transferred" : "status." + t.status) + (transferred ? " → " + t.service : "")
            : K.t(result.events[0] || ""), false);
      render();
      refreshSoon();
    } catch (err) {
      say(err.message, true);
      if (err.status === 401) signOut();
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

  async function signIn(token) {
    try {
      const me = await K.api("/api/me", { token });
      if (!mayActHere(me)) {
        throw new Error(me.role === "staff" || me.role === "supervisor" ? me.name + ": not allowed at window " + number
                                                                        : "a staff or admin token is needed");
      }
      state.token = token; state.me = me;
      $("signin-message").textContent = "";
      sessionStorage.setItem(TOKEN_KEY, token);
      $("signin-card").classList.add("hidden");
      $("work").classList.remove("hidden");
      $("sign-out").classList.remove("hidden");
      await refresh();
      tell("signed-in", { token, me, window: state.window });
      if (!state.stream) {
        const health = await K.api("/api/health");
        state.stream = K.stream(health.last_event_id, onEvent, (ok) => { document.body.dataset.connected = String(ok); },
                                [...K.eventTypes, ...K.applicationEvents]);
      }
    } catch (err) {
      $("signin-message").textContent = err.message;
    }
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null; state.me = null;
    $("work").classList.add("hidden");
    $("signin-card").classList.remove("hidden");
    $("sign-out").classList.add("hidden");
    $("who").textContent = "";
    tell("signed-out");
  }

  state.signOut = signOut;
  document.querySelectorAll("[data-action]").forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));
  $("transfer").addEventListener("click", () => act("transfer", { service: $("transfer-service").value }));
  $("reinstate").addEventListener("click", () => act("reinstate", { ticket: $("reinstate-number").value.trim() }));
  $("signin").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
  $("sign-out").addEventListener("click", signOut);
  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", render);
  document.addEventListener("keydown", (e) => {
    if (!KEYS[e.key] || !state.token) return;
    e.preventDefault();
    act(KEYS[e.key]);
  });
  setInterval(tick, 1000);
  K.applyLang();
  if (state.token) signIn(state.token);
})();
