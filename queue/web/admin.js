/* The hall manager's dashboard (/admin): waiting now, tickets over the SLA wait, the
   waiting count over the day, figures per service and per window, applications (办结率,
   提前办结率, warnings and overdue per department and item, for a period of filing; CSV),
   the webhook's notifications, the hall notice and the voice status. Live: the figures
   are fetched again after changes (at most every 2 s) and every 30 s, so a wait crossing
   the threshold shows without any event. The manager signs in with a login and password
   (an admin account; the session is an HttpOnly cookie) and a reload resumes the session;
   a 401 brings the sign-in form back with the server's words. The fleet (fleet.js) and the
   people, credentials and audit sections (people.js) hear of it through "kiosq:admin" events:
   {what: "signed-in", me, lastEventId, offsetMinutes} and {what: "signed-out"}. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  // person: who the session cookie is; me: the same once known to be an admin
  const state = { person: null, me: null, stats: null, display: null, chart: "", stream: null,
                  reloading: null, apps: null, notifications: null };
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
      K.api("/api/applications/stats?" + period()),
      K.api("/api/notifications?limit=50")]);
    Object.assign(state, { apps, notifications });
    renderApplications();
    renderNotifications();
  }

  async function exportApplications(e) {
    e.preventDefault();
    const response = await fetch(exportPath());
    if (!response.ok) { failed(await responseError(response)); return; }
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
      K.api("/api/stats" + day), K.api("/api/display"),
      K.api("/api/stats/chart.svg" + chartQuery)]);
    Object.assign(state, { stats, display, chart });
    await loadApplications();
    render();
    return display;
  }
  const reload = K.debounce(() => { if (state.me) load().catch(failed); }, 2000);

  // An error for the message line, or (a 401: the session ended) back to the sign-in form.
  function failed(err) {
    if (err.status === 401) { signedOut(err.message); return; }
    $("message").textContent = err.message;
    $("message").className = "error";
  }

  async function responseError(response) {
    let data = null;
    try { data = await response.json(); } catch (err) { /* not JSON */ }
    const e = new Error((data && data.detail) || ("HTTP " + response.status));
    e.status = response.status; e.code = data && data.error;
    return e;
  }

  function signinSay(text, ok) {
    $("signin-message").textContent = text || "";
    $("signin-message").className = ok ? "ok" : "error";
  }

  function showSignIn(message, ok) {
    $("dashboard").classList.add("hidden");
    $("signin-card").classList.remove("hidden");
    signinSay(message, ok);
  }

  function tell(detail) {
    document.dispatchEvent(new CustomEvent("kiosq:admin", { detail }));
  }

  // Signed in (just now, or a session resumed on load): the dashboard, for an admin only.
  async function enter(me) {
    state.person = me;
    $("who").textContent = K.who(me);
    $("sign-out").classList.remove("hidden");
    if (me.role !== "admin") {
      state.me = null;
      showSignIn(K.t("signin.needs_admin", { name: me.name, login: me.login, role: K.t("role." + me.role) }));
      return;
    }
    state.me = me;
    const display = await load();
    signinSay("");
    $("signin-card").classList.add("hidden");
    $("dashboard").classList.remove("hidden");
    tell({ what: "signed-in", me, lastEventId: display.last_event_id, offsetMinutes: K.offsetMinutes(display.now) });
    if (!state.stream) {
      state.stream = K.stream("/api/staff/events", display.last_event_id, reload,
                              (ok) => { document.body.dataset.connected = String(ok); },
                              [...K.eventTypes, ...K.applicationEvents]);
      if (!state.reloading) state.reloading = setInterval(reload, 30000);
    }
  }

  const signIn = K.session.form((me) => enter(me), (text) => signinSay(text));

  // The session is gone on the server (signed out, expired, the account disabled).
  function signedOut(message, ok) {
    const was = state.me;
    Object.assign(state, { me: null, person: null });
    // The staff stream is the person's: a new sign-in opens a new one.
    if (state.stream) { state.stream.close(); state.stream = null; }
    $("who").textContent = "";
    $("sign-out").classList.add("hidden");
    showSignIn(message, ok);
    if (was) tell({ what: "signed-out" });
    if (was && !$("login").value) $("login").value = was.login;
    $("password").value = "";
  }
  state.signedOut = signedOut;

  async function signOut() {
    try {
      await K.session.signOut();
      signedOut(K.t("signin.signed_out"), true);
    } catch (err) {
      if (state.me) failed(err); else signinSay(err.message);
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

  async function saveNotice() {
    try {
      await K.api("/api/hall/notice", { method: "PUT", body: { notice: $("notice-input").value } });
      $("message").textContent = K.t("saved");
      $("message").className = "ok";
    } catch (err) {
      failed(err);
    }
  }

  async function exportCsv() {
    const day = state.stats ? state.stats.day : "";
    const response = await fetch("/api/stats/export.csv?day=" + day + "&lang=" + K.lang);
    if (!response.ok) { failed(await responseError(response)); return; }
    const link = K.el("a", { href: URL.createObjectURL(await response.blob()), download: "kiosq-" + day + ".csv" });
    document.body.append(link);
    link.click();
    link.remove();
  }

  $("signin").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("notice-save").addEventListener("click", saveNotice);
  $("export").addEventListener("click", () => exportCsv().catch(failed));
  $("app-export").addEventListener("click", (e) => exportApplications(e).catch(failed));
  $("app-period").addEventListener("submit", (e) => {
    e.preventDefault();
    loadApplications().catch(failed);
  });
  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", () => {
    if (state.me && state.stats) load().catch(failed); else K.applyLang();
    $("who").textContent = K.who(state.person);
  });
  K.applyLang();
  resume();
})();
