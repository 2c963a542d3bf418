/* The hall manager's dashboard (/admin): waiting now, tickets over the SLA wait, the
   waiting count over the day, figures per service and per window, applications (办结率,
   提前办结率, warnings and overdue per department and item, for a period of filing; CSV),
   the webhook's notifications, the hall notice and the voice status. Live: the figures
   are fetched again after changes (at most every 2 s) and every 30 s, so a wait crossing
   the threshold shows without any event. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "kiosq.admin.token";
  const params = new URLSearchParams(location.search);
  const state = { token: sessionStorage.getItem(TOKEN_KEY), stats: null, display: null, chart: "", stream: null,
                  apps: null, notifications: null };
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

  // -- applications ------------------------------------------------------------------

  const percent = (v) => (v === null || v === undefined ? "—" : v + "%");
  const APP_COLUMNS = ["submitted", "completed", "rejected", "returned", "open", "completion_rate", "completed_early",
                       "early_completion_rate", "completed_late", "warnings", "overdue", "over_legal"];

  function appCell(row, key) {
    const rate = key.endsWith("_rate");
    const td = K.el("td", { "data-col": key }, rate ? percent(row[key]) : fmt(row[key]));
    if (key === "warnings" && row[key] > 0) td.className = "warn";
    if ((key === "overdue" || key === "over_legal") && row[key] > 0) td.className = "over";
    return td;
  }

  function appTable(el, rows, first) {
    const head = K.el("tr");
    head.append(...first.map(([label]) => K.el("th", null, K.t(label))),
                ...APP_COLUMNS.map((key) => K.el("th", null, K.t("acol." + key))));
    el.replaceChildren(head, ...rows.map((row) => {
      const tr = K.el("tr", { "data-row": row.item || row.department });
      tr.append(...first.map(([, get]) => K.el("td", null, get(row))), ...APP_COLUMNS.map((key) => appCell(row, key)));
      return tr;
    }));
  }

  function figure(id, label, value, breach) {
    const box = K.el("div", { class: "figure-box", id });
    box.append(K.el("div", { class: "label" }, K.t(label)), K.el("div", { class: "value" + (breach ? " breach" : "") }, value));
    return box;
  }

  function renderApplications() {
    const a = state.apps;
    if (!a) return;
    const h = a.hall;
    if (document.activeElement !== $("app-from")) $("app-from").value = a.from;
    if (document.activeElement !== $("app-to")) $("app-to").value = a.to;
    $("app-export").href = exportPath();
    $("app-figures").replaceChildren(
      figure("fig-submitted", "admin.submitted", fmt(h.submitted)),
      figure("fig-completion", "admin.completion_rate", percent(h.completion_rate)),
      figure("fig-early", "admin.early_rate", percent(h.early_completion_rate)),
      figure("fig-warnings", "admin.warnings", fmt(h.warnings), h.warnings > 0),
      figure("fig-overdue", "admin.overdue", fmt(h.overdue), h.overdue > 0));
    appTable($("app-departments"), a.departments, [["acol.department", (r) => r.department]]);
    appTable($("app-items"), a.items, [["col.name", (r) => r.item_name + " " + r.item],
                                       ["acol.department", (r) => r.department]]);
  }

  function renderNotifications() {
    const n = state.notifications;
    if (!n) return;
    $("webhook-status").textContent = n.webhook ? "" : K.t("admin.no_webhook");
    const head = K.el("tr");
    head.append(...["ncol.created", "ncol.no", "ncol.status", "ncol.state", "ncol.attempts", "ncol.error"]
      .map((key) => K.el("th", null, K.t(key))));
    const rows = n.notifications.map((x) => {
      const tr = K.el("tr", { "data-id": String(x.id), "data-state": x.state });
      tr.append(K.el("td", null, (x.created_at || "").slice(0, 19).replace("T", " ")), K.el("td", null, x.tracking_no),
                K.el("td", null, K.t("appstatus." + x.status)), K.el("td", { class: x.state === "failed" ? "over" : "" },
                K.t("nstate." + x.state)), K.el("td", null, String(x.attempts)), K.el("td", null, x.last_error || ""));
      return tr;
    });
    if (!rows.length) {
      const none = K.el("tr", { class: "none" });
      none.append(K.el("td", { colspan: "6" }, K.t("admin.no_notifications")));
      rows.push(none);
    }
    $("notifications").replaceChildren(head, ...rows);
  }

  // The chosen period of filing: the inputs once set, else ?from=&to= in the address, else
  // the server's default (the first of this month to today).
  function period() {
    const from = $("app-from").value || params.get("from") || "";
    const to = $("app-to").value || params.get("to") || "";
    const q = new URLSearchParams();
    if (from) q.set("from", from);
    if (to) q.set("to", to);
    return q;
  }

  function exportPath() {
    const q = period();
    q.set("lang", K.lang);
    return "/api/applications/export.csv?" + q;
  }

  async function loadApplications() {
    const [apps, notifications] = await Promise.all([
      K.api("/api/applications/stats?" + period(), { token: state.token }),
      K.api("/api/notifications?limit=50", { token: state.token })]);
    Object.assign(state, { apps, notifications });
    renderApplications();
    renderNotifications();
  }

  async function exportApplications(e) {
    e.preventDefault();
    const response = await fetch(exportPath(), { headers: { Authorization: "Bearer " + state.token } });
    if (!response.ok) { $("message").textContent = (await response.json()).detail; return; }
    const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const link = K.el("a", { href: URL.createObjectURL(await response.blob()),
                             download: named ? named[1] : "kiosq-applications.csv" });
    document.body.append(link);
    link.click();
    link.remove();
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
    renderApplications();
    renderNotifications();
  }

  async function load() {
    const day = params.get("day") ? "?day=" + encodeURIComponent(params.get("day")) : "";
    const chartQuery = (day ? day + "&" : "?") + "lang=" + K.lang;
    const [stats, display, chart] = await Promise.all([
      K.api("/api/stats" + day, { token: state.token }), K.api("/api/display"),
      K.api("/api/stats/chart.svg" + chartQuery, { token: state.token })]);
    Object.assign(state, { stats, display, chart });
    await loadApplications();
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
      document.dispatchEvent(new CustomEvent("kiosq:admin", { detail: { token, lastEventId: display.last_event_id } }));
      if (!state.stream) {
        state.stream = K.stream(display.last_event_id, reload, (ok) => { document.body.dataset.connected = String(ok); },
                                [...K.eventTypes, ...K.applicationEvents]);
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
  $("app-export").addEventListener("click", (e) => exportApplications(e).catch((err) => { $("message").textContent = err.message; }));
  $("app-period").addEventListener("submit", (e) => {
    e.preventDefault();
    loadApplications().catch((err) => { $("message").textContent = err.message; });
  });
  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", () => { if (state.token && state.stats) load(); else K.applyLang(); });
  K.applyLang();
  if (state.token) signIn(state.token);
})();
