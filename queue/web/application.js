/* An application's progress on a phone (/a/{number}, the QR code on the receipt). The
   receipt's QR holds the lookup code in the address's fragment (/a/{number}#code=XXXXXXXX:
   a fragment never reaches the server, its logs or a proxy), so the page asks at once, with
   no typing: POST /api/applications/{number}/lookup {"code"}; without one the citizen types
   the code printed as 查询密码 (case, spaces and dashes do not matter). The page shows the
   state, the dates and the steps; the code is never stored or put in a query string, and the
   fragment is taken out of the address once read (history.replaceState), so the phone's
   history, a shared screen or a copied link do not carry it on; wrong tries are counted and
   throttled by the server, and its words are shown as they are. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const number = decodeURIComponent(location.pathname.split("/").pop());
  const $ = (name) => document.getElementById(name);
  const state = { found: null, rating: null };
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

  async function ask(code) {
    $("error").textContent = "";
    try {
      state.found = await K.api("/api/applications/" + encodeURIComponent(number) + "/lookup",
                                { method: "POST", body: { code } });
      $("code").value = "";
      offerRating(code);
    } catch (err) {
      state.found = null;
      $("error").textContent = err.code === "no_match" ? K.t("app.no_match") : err.message;
    }
    $("ask").classList.toggle("hidden", !!state.found);
    render();
  }

  /* 一事一评: once completed or rejected, the application can be rated from here, with the
     code just used (kept in this closure only, for this one request). */
  async function offerRating(code) {
    const a = state.found;
    if (state.rating || !a || !["completed", "rejected"].includes(a.status)) return;
    try {
      const choices = await K.api("/api/ratings/reasons");
      $("rating").classList.remove("hidden");
      state.rating = K.rateForm($("rating"), choices, null, (body) => K.api(
        "/api/applications/" + encodeURIComponent(number) + "/rating", { method: "POST", body: { ...body, code } }));
    } catch (err) {
      /* no rating offered */
    }
  }

  function fromFragment() {
    const code = new URLSearchParams(location.hash.replace(/^#/, "")).get("code");
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
    return code ? code.trim() : "";
  }

  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    const code = $("code").value.replace(/[\s-]/g, "").toUpperCase();
    if (code) ask(code);
  });
  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", render);
  render();
  const given = fromFragment();
  if (given) ask(given);
})();
