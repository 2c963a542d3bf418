/* An application's progress on a phone (/a/{number}, the QR code on the receipt): the
   citizen types the last 4 characters of their ID number, the page asks
   GET /api/applications/{number}?id_last4= and shows the state, the dates and the steps.
   The digits are never stored or put in the address; wrong tries are counted and
   throttled by the server, and its words are shown as they are. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const number = decodeURIComponent(location.pathname.split("/").pop());
  const $ = (name) => document.getElementById(name);
  const state = { found: null };
  window.KiosqApplication = state;

  function when(stamp) { return stamp ? stamp.replace("T", " ").slice(0, 16) : ""; }

  function render() {
    K.applyLang();
    $("number").textContent = number;
    const a = state.found;
    $("result").classList.toggle("hidden", !a);
    if (!a) return;
    $("item").textContent = a.item_name + " · " + a.department;
    $("state").textContent = K.t("app.status." + a.status) +
      (a.rejection_pending ? " " + K.t("app.pending_rejection") : "");
    $("dates").textContent = K.t("app.submitted", { at: when(a.submitted_at) }) + " · " +
      K.t("app.promised", { date: a.promised_date });
    const list = $("history");
    list.replaceChildren(...a.history.map((step) => {
      const li = document.createElement("li");
      li.textContent = when(step.at) + "  " + K.t("app.status." + step.status) + (step.note ? "（" + step.note + "）" : "");
      return li;
    }));
  }

  async function look(event) {
    event.preventDefault();
    const digits = $("last4").value.trim().toUpperCase();
    $("error").textContent = "";
    try {
      state.found = await K.api("/api/applications/" + encodeURIComponent(number) + "?id_last4=" + encodeURIComponent(digits));
      $("last4").value = "";
    } catch (err) {
      state.found = null;
      $("error").textContent = err.code === "no_match" ? K.t("app.no_match") : err.message;
    }
    render();
  }

  $("ask").addEventListener("submit", look);
  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", render);
  render();
})();
