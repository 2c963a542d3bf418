/* Follow a ticket on a phone (/t/{id}, the QR code on the slip): people ahead, the
   estimated wait, and the call when it comes. The id in the address is the secret;
   its own event stream (/api/tickets/{id}/events) tells it its changes and its place in line. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const id = decodeURIComponent(location.pathname.split("/").pop());
  const $ = (name) => document.getElementById(name);
  const state = { ticket: null, source: null, rating: null };
  const FINAL = ["done", "cancelled"];
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

  function changed(before) {
    const t = state.ticket;
    if (before === "waiting" && t.status === "called" && navigator.vibrate) navigator.vibrate([300, 100, 300]);
    render();
    if (before !== "done" && t.status === "done") offerRating();
  }

  /* Once the ticket is finished: its service can be rated (好差评), once, from this page. */
  async function offerRating() {
    if (state.rating) return;
    try {
      const seen = await K.api("/api/tickets/" + encodeURIComponent(id) + "/rating");
      if (!seen.rateable && !seen.rating) return;
      $("rating").classList.remove("hidden");
      state.rating = K.rateForm($("rating"), seen, seen.rating, (body) => K.api(
        "/api/tickets/" + encodeURIComponent(id) + "/rating", { method: "POST", body }));
    } catch (err) {
      /* no rating offered: the page stays as it is */
    }
  }

  /* The ticket's own stream: its changes (status, window) and `ticket.position` (ahead,
     eta) whenever someone ahead is called. It ends once the ticket is done or cancelled. */
  function onEvent(type, data) {
    const t = state.ticket;
    const before = t.status;
    if (type === "ticket.position") Object.assign(t, data);
    else if (data.ticket) Object.assign(t, data.ticket);
    changed(before);
    if (FINAL.includes(t.status) && state.source) { state.source.close(); state.source = null; }
  }

  async function start() {
    let since = null;
    try {
      since = (await K.api("/api/health")).last_event_id;  // changes from here on are replayed to the stream
      state.ticket = await K.api("/api/tickets/" + encodeURIComponent(id));
    } catch (err) {
      if (err.status === 404) {
        $("status").textContent = K.t("follow.not_found");
        $("waiting-figures").classList.add("hidden");
        return;
      }
      $("status").textContent = err.message;
      setTimeout(start, 2000);  // the server may be starting: try again
      return;
    }
    render();
    if (state.ticket.status === "done") offerRating();
    if (FINAL.includes(state.ticket.status)) return;
    state.source = K.stream("/api/tickets/" + encodeURIComponent(id) + "/events", since, onEvent,
                            (ok) => { document.body.dataset.connected = String(ok); },
                            [...K.eventTypes, "ticket.position"]);
  }

  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", render);
  K.applyLang();
  start();
})();
