/* The hall display (叫号屏): the current call very large, the last calls, every window's
   number, waiting counts, clock and notice, live from the event stream; each call is
   highlighted for at least `?hold=` seconds (default 5) and announced in turn. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const params = new URLSearchParams(location.search);
  const HOLD_MS = 1000 * Number(params.get("hold") || 5);
  const RECENT = 8;
  // A call replayed after a long outage is shown, but announcing it late would send
  // people to a window that has moved on.
  const ANNOUNCE_WITHIN_MS = 60 * 1000;
  const $ = (id) => document.getElementById(id);

  const state = {
    hall: null, windows: new Map(), services: new Map(), recent: [], current: null,
    pending: [], holding: null, offset: 0, voice: null, announced: [], connected: false,
    zone: -new Date().getTimezoneOffset(), // the hall's UTC offset once the server has said it
  };
  window.KiosqHall = state; // for tests and for a curious technician's console

  function callLine(call) {
    const w = state.windows.get(call.window);
    if (K.lang === "en") return { before: "", after: "→ " + (w ? (w.name_en || "Window " + call.window) : "Window " + call.window) };
    return { before: K.t("display.now"), after: K.t("display.to") + " " + call.window + " " + K.t("display.window_suffix") + " " + K.t("display.do") };
  }

  function renderCurrent(flash) {
    const box = $("current");
    const call = state.current;
    box.classList.toggle("idle", !call);
    if (!call) {
      $("current-before").textContent = "";
      $("current-number").textContent = K.t("display.idle");
      $("current-window").textContent = "";
      return;
    }
    const line = callLine(call);
    $("current-before").textContent = line.before;
    $("current-number").textContent = call.number;
    $("current-window").textContent = line.after;
    if (flash) {
      box.classList.remove("flash");
      void box.offsetWidth; // restart the animation
      box.classList.add("flash");
    }
  }

  function renderRecent() {
    const list = $("recent");
    list.replaceChildren(...state.recent.map((call) => {
      const li = K.el("li", { "data-number": call.number });
      li.append(K.el("span", { class: "number" }, call.number), K.el("span", { class: "window" },
        K.lang === "en" ? "Window " + call.window : call.window + " 号窗口"));
      return li;
    }));
  }

  function renderWindows() {
    const box = $("windows");
    box.replaceChildren(...[...state.windows.values()].map((w) => {
      const div = K.el("div", { class: "win" + (w.state === "paused" ? " paused" : ""), "data-window": w.number });
      const number = w.state === "paused" ? K.t("display.paused") : (w.current ? w.current.number : "—");
      div.append(K.el("div", { class: "name" }, K.name(w)), K.el("div", { class: "number" }, number));
      return div;
    }));
  }

  function renderServices() {
    const box = $("services");
    box.replaceChildren(...[...state.services.values()].map((s) => {
      const div = K.el("div", { class: "svc", "data-service": s.code });
      div.append(K.el("span", { class: "name" }, K.name(s)), K.el("span", { class: "waiting" }, String(s.waiting)));
      return div;
    }));
  }

  function renderAll() {
    K.applyLang();
    $("hall-name").textContent = K.name(state.hall);
    renderNotice();
    renderCurrent(false);
    renderRecent();
    renderWindows();
    renderServices();
  }

  function renderNotice() {
    const box = $("notice");
    box.classList.remove("scroll");
    box.replaceChildren();
    if (!state.hall.notice) return;
    box.append(K.el("span", null, state.hall.notice));
    box.classList.toggle("scroll", box.scrollWidth > box.clientWidth);
  }

  /* Calls that come together are queued; each holds the big panel for HOLD_MS. */
  function highlight(call) {
    state.pending.push(call);
    pump();
  }

  function pump() {
    if (state.holding) return;
    const next = state.pending.shift();
    if (!next) return;
    state.current = next;
    renderCurrent(true);
    state.holding = setTimeout(() => { state.holding = null; pump(); }, HOLD_MS);
  }

  function announce(call) {
    if (!state.voice) return;
    const age = Date.now() + state.offset - Date.parse(call.at);
    if (age > ANNOUNCE_WITHIN_MS) return;
    state.announced.push(call);
    state.voice.push(call);
  }

  const refreshServices = K.debounce(async () => {
    try {
      for (const s of await K.api("/api/services")) state.services.set(s.code, s);
      renderServices();
    } catch (err) { console.warn("waiting counts:", err.message); }
  }, 300);

  function onEvent(type, data, id) {
    if (type === "hall.notice") {
      state.hall.notice = data.notice;
      renderNotice();
      return;
    }
    const w = state.windows.get(data.window);
    if (type === "window.paused" || type === "window.resumed") {
      if (w) w.state = data.state;
      renderWindows();
      return;
    }
    const ticket = data.ticket;
    if (type === "ticket.called" || type === "ticket.recalled") {
      const call = { id, type, number: ticket.number, window: data.window, at: data.at };
      // A recall moves the number back to the top of the list.
      state.recent = [call, ...state.recent.filter((c) => c.number !== call.number)].slice(0, RECENT);
      if (w) w.current = ticket;
      highlight(call);
      announce(call);
      renderRecent();
    } else if (type === "ticket.started") {
      if (w) w.current = ticket;
    } else if (w && w.current && w.current.number === ticket.number) {
      w.current = null; // finished, no-show, transferred or cancelled at that window
    }
    renderWindows();
    refreshServices();
  }

  function onState(connected) {
    state.connected = connected;
    document.body.dataset.connected = String(connected);
  }

  function setupVoice(status) {
    const A = window.KiosqAnnounce;
    if (!status.available || !A) {
      console.warn("no voice announcements:", status.reason);
      return;
    }
    const url = (call) => "/api/announcements?number=" + encodeURIComponent(call.number) + "&window=" + call.window;
    state.voice = new A.AnnounceQueue(A.audioPlayer(url));
    const button = $("sound-enable");
    A.canAutoplay().then((ok) => { button.classList.toggle("hidden", ok); });
    button.addEventListener("click", async () => {
      if (await A.unlockAudio()) button.classList.add("hidden");
    });
  }

  async function start() {
    let snap;
    for (;;) {
      try { snap = await K.api("/api/display"); break; } catch (err) {
        onState(false);
        await new Promise((r) => setTimeout(r, 2000)); // the server may be starting: try again
      }
    }
    state.offset = Date.parse(snap.now) - Date.now();
    state.zone = K.offsetMinutes(snap.now);
    showClock(); // on the hall's clock at once, not at the next tick
    state.hall = snap.hall;
    for (const w of snap.windows) state.windows.set(w.number, w);
    for (const s of snap.services) state.services.set(s.code, s);
    state.recent = snap.calls.map((c) => ({ id: c.id, type: c.type, number: c.ticket.number, window: c.window, at: c.at }))
      .filter((c, i, all) => all.findIndex((o) => o.number === c.number) === i).slice(0, RECENT);
    state.current = state.recent[0] || null;
    renderAll();
    setupVoice(snap.voice);
    K.stream("/api/events", snap.last_event_id, onEvent, onState);
  }

  const showClock = () => { $("clock").textContent = K.clockText(Date.now() + state.offset, state.zone); };
  showClock();
  setInterval(showClock, 250);
  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", () => state.hall && renderAll());
  K.applyLang();
  start();
})();
