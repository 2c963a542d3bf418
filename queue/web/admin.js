/* The hall manager's dashboard (/admin): waiting now, tickets over the SLA wait, the
   waiting count over the day, figures per service and per window, the hall notice and
   the voice status. Live: the figures are fetched again after changes (at most every
   2 s) and every 30 s, so a wait crossing the threshold shows without any event. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "kiosq.admin.token";
  const params = new URLSearchParams(location.search);
  const state = { token: sessionStorage.getItem(TOKEN_KEY), stats: null, display: null, chart: "", stream: null };
  window.KiosqAdmin = state;

  const fmt = (v) => (v === null || v === undefined ? "—" : String(v));
  const COLUMNS = [
    ["col.issued", (r) => r.issued], ["col.served", (r) => r.served], ["col.no_show", (r) => r.no_shows],
    ["col.waiting", (r) => r.waiting], ["col.wait_mean", (r) => r.wait_minutes.mean],
    ["col.wait_median", (r) => r.wait_minutes.median], ["col.wait_p90", (r) => r.wait_minutes.p90],
    ["col.service_mean", (r) => r.service_minutes.mean], ["col.service_p90", (r) => r.service_minutes.p90],
    ["col.no_show_rate", (r) => (r.no_show_percent === null ? null : r.no_show_percent + "%")],
    ["col.per_hour", (r) => r.served_per_hour],
  ];

  function table(el, rows, key) {
    const head = K.el("tr");
    head.append(K.el("th", null, K.t("col.name")), ...COLUMNS.map(([label]) => K.el("th", null, K.t(label))));
    el.replaceChildren(head, ...rows.map((row) => {
      const tr = K.el("tr", { "data-row": String(row[key]) });
      tr.append(K.el("td", null, K.name(row)), ...COLUMNS.map(([, get]) => K.el("td", null, fmt(get(row)))));
      return tr;
    }));
  }

  function render() {
    const s = state.stats, d = state.display;
    K.applyLang();
    if (!s || !d) return;
    $("hall-name").textContent = K.name(d.hall);
    $("day").textContent = s.day;
    $("as-of").textContent = s.as_of.slice(11, 19);
    $("waiting").replaceChildren(...s.services.map((row) => {
      const div = K.el("div", { class: "svc", "data-service": row.code });
      div.append(K.el("span", null, K.name(row) + " "), K.el("b", { class: "waiting" }, String(row.waiting)));
      return div;
    }));
    $("sla-title").textContent = K.t("admin.sla", { minutes: s.sla.threshold_minutes }) + " · " + s.sla.breaches;
    const over = s.sla.waiting_over_threshold;
    $("sla-breaches").replaceChildren(...(over.length ? over.map((t) => K.el("li", { class: "breach", "data-number": t.number },
      t.number + " · " + (K.lang === "en" ? t.service_name_en : t.service_name) + " · " + t.waited_minutes + " " + K.t("follow.minutes")))
      : [K.el("li", { class: "none" }, K.t("admin.no_breach"))]));
    $("chart").innerHTML = state.chart; // our own server's SVG
    table($("services-table"), s.services, "code");
    table($("windows-table"), s.windows, "number");
    if (document.activeElement !== $("notice-input")) $("notice-input").value = d.hall.notice || "";
    $("voice-status").textContent = d.voice.available ? K.t("admin.voice_ok") : d.voice.reason;
    $("voice-status").classList.toggle("breach", !d.voice.available);
  }

  async function load() {
    const day = params.get("day") ? "?day=" + encodeURIComponent(params.get("day")) : "";
    const chartQuery = (day ? day + "&" : "?") + "lang=" + K.lang;
    const [stats, display, chart] = await Promise.all([
      K.api("/api/stats" + day, { token: state.token }), K.api("/api/display"),
      K.api("/api/stats/chart.svg" + chartQuery, { token: state.token })]);
    Object.assign(state, { stats, display, chart });
    render();
    return display;
  }
  const reload = K.debounce(() => load().catch((err) => { $("message").textContent = err.message; }), 2000);

  async function signIn(token) {
    try {
      const me = await K.api("/api/me", { token });
      if (me.role !== "admin") throw new Error(me.name + ": an admin token is needed");
      state.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
      $("signin-message").textContent = "";
      const display = await load();
      $("signin-card").classList.add("hidden");
      $("dashboard").classList.remove("hidden");
      if (!state.stream) {
        state.stream = K.stream(display.last_event_id, reload, (ok) => { document.body.dataset.connected = String(ok); });
        setInterval(reload, 30000);
      }
    } catch (err) {
      $("signin-message").textContent = err.message;
    }
  }

  async function saveNotice() {
    try {
      await K.api("/api/hall/notice", { method: "PUT", token: state.token, body: { notice: $("notice-input").value } });
      $("message").textContent = K.t("saved");
      $("message").className = "ok";
    } catch (err) {
      $("message").textContent = err.message;
      $("message").className = "error";
    }
  }

  async function exportCsv() {
    const day = state.stats ? state.stats.day : "";
    const response = await fetch("/api/stats/export.csv?day=" + day + "&lang=" + K.lang,
                                 { headers: { Authorization: "Bearer " + state.token } });
    if (!response.ok) { $("message").textContent = (await response.json()).detail; return; }
    const link = K.el("a", { href: URL.createObjectURL(await response.blob()), download: "kiosq-" + day + ".csv" });
    document.body.append(link);
    link.click();
    link.remove();
  }

  $("signin").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
  $("notice-save").addEventListener("click", saveNotice);
  $("export").addEventListener("click", exportCsv);
  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", () => { if (state.token && state.stats) load(); else K.applyLang(); });
  K.applyLang();
  if (state.token) signIn(state.token);
})();
