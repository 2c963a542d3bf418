/* Follow a ticket on a phone (/t/{id}, the QR code on the slip): people ahead, the
   estimated wait, and the call when it comes. The id in the address is the secret;
   events carry only numbers, so the page listens for its number and asks again. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const id = decodeURIComponent(location.pathname.split("/").pop());
  const $ = (name) => document.getElementById(name);
  const state = { ticket: null };
  window.KiosqFollow = state;

  function render() {
    const t = state.ticket;
    K.applyLang();
    if (!t) return;
    $("number").textContent = t.number;
    $("service").textContent = K.name(t);
    const waiting = t.status === "waiting";
    $("waiting-figures").classList.toggle("hidden", !waiting);
    $("position").textContent = waiting ? String(t.ahead) : "—";
    $("eta").textContent = waiting && t.eta_minutes !== null ? String(t.eta_minutes) : "—";
    const called = t.status === "called" || t.status === "serving";
    $("called").classList.toggle("hidden", !called);
    if (called) {
      $("called").textContent = K.lang === "en" ? K.t("follow.called") + " window " + t.window
        : K.t("follow.called") + " " + t.window + " 号窗口";
    }
    const words = { waiting: "follow.waiting", called: "follow.now", serving: "follow.now", done: "follow.done" };
    $("status").textContent = K.t(words[t.status] || "follow.gone");
  }

  async function refresh() {
    try {
      const before = state.ticket && state.ticket.status;
      state.ticket = await K.api("/api/tickets/" + encodeURIComponent(id));
      if (before === "waiting" && state.ticket.status === "called" && navigator.vibrate) navigator.vibrate([300, 100, 300]);
      render();
    } catch (err) {
      if (err.status === 404) { $("status").textContent = K.t("follow.not_found"); $("waiting-figures").classList.add("hidden"); }
      else $("status").textContent = err.message;
    }
  }
  const refreshSoon = K.debounce(refresh, 250);

  function onEvent(type, data) {
    const t = state.ticket;
    // Our number moved, or someone ahead in our service's queue did.
    if (!t || !data.ticket || data.ticket.number === t.number || data.ticket.service === t.service ||
        type === "window.paused" || type === "window.resumed") refreshSoon();
  }

  async function start() {
    const health = await K.api("/api/health").catch(() => ({ last_event_id: 0 }));
    await refresh();
    K.stream(health.last_event_id, (type, data) => onEvent(type, data),
             (ok) => { document.body.dataset.connected = String(ok); if (ok) refreshSoon(); });
  }

  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", render);
  K.applyLang();
  start();
})();
