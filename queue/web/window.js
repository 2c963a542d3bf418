/* The window display (窗口屏): the number called to or served at one window, very large. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const number = Number(location.pathname.split("/").pop());
  const $ = (id) => document.getElementById(id);
  const state = { window: null };
  window.KiosqWindow = state;

  function render() {
    const w = state.window;
    if (!w) return;
    K.applyLang();
    $("window-name").textContent = K.name(w);
    $("number").textContent = w.current ? w.current.number : "—";
    $("state").textContent = w.state === "paused" ? K.t("display.paused") : "";
  }

  function onEvent(type, data) {
    if (data.window !== number || !state.window) return;
    if (type === "window.paused" || type === "window.resumed") state.window.state = data.state;
    else if (["ticket.called", "ticket.recalled", "ticket.started"].includes(type)) state.window.current = data.ticket;
    else if (state.window.current && state.window.current.number === data.ticket.number) state.window.current = null;
    render();
  }

  async function start() {
    for (;;) {
      try {
        const snap = await K.api("/api/display");
        state.window = snap.windows.find((w) => w.number === number) || null;
        if (!state.window) { $("number").textContent = "?"; $("state").textContent = "no window " + number; return; }
        render();
        K.stream("/api/events", snap.last_event_id, onEvent, (ok) => { document.body.dataset.connected = String(ok); });
        return;
      } catch (err) {
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }
  document.addEventListener("kiosq:lang", render);
  start();
})();
