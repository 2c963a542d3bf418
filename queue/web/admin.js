/* The hall manager's dashboard (/admin): waiting now, tickets over the SLA wait, the
   waiting count over the day, figures per service and per window, applications (办结率,
   提前办结率, warnings and overdue per department and item, for a period of filing; CSV),
   the webhook's notifications, the hall notice and the voice status. Live: the figures
   are fetched again after changes (at most every 2 s) and every 30 s, so a wait crossing
   the threshold shows without any event. The manager signs in with a login and password
   (an admin account; the session is an HttpOnly cookie) and a reload resumes the session;
   a 401 brings the sign-in form back with the server's words. The fleet (fleet.js) and the
   people, credentials and audit sections (below) hear of it through "kiosq:admin" events:
   {what: "signed-in", me, lastEventId, offsetMinutes} and {what: "signed-out"}. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  // person: who the session cookie is; me: the same once known to be an admin
  const state = { person: null, me: null, stats: null, display: null, chart: "", stream: null,
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
      state.stream = K.stream(display.last_event_id, reload, (ok) => { document.body.dataset.connected = String(ok); },
                              [...K.eventTypes, ...K.applicationEvents]);
      setInterval(reload, 30000);
    }
  }

  async function signIn(e) {
    e.preventDefault();
    const login = $("login").value.trim(), password = $("password").value;
    if (!login || !password) { signinSay(K.t("signin.empty")); return; }
    $("sign-in").disabled = true;
    try {
      const me = await K.session.signIn(login, password);
      $("password").value = "";
      await enter(me);
    } catch (err) {
      signinSay(err.message);  // wrong_login, disabled, too_many_tries: the server's words
      if (err.code === "wrong_login") $("password").select();
    } finally {
      $("sign-in").disabled = false;
    }
  }

  // The session is gone on the server (signed out, expired, the account disabled).
  function signedOut(message, ok) {
    const was = state.me;
    Object.assign(state, { me: null, person: null });
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

/* /admin's people, credentials and audit sections (admin accounts only):
   - 人员 People: every staff account, with its role, windows, last sign-in and open sessions;
     a form to create one; per row: change role and windows, reset the password (in a row
     form, never a browser dialog) and disable (two clicks: its sessions end at once) or
     enable. A disabled account is marked in its row.
   - 凭证 Credentials: the bearer tokens of scripts and terminals (never a secret), each
     active, expired or revoked (marked); revoke takes two clicks.
   - 审计日志 Audit: the newest 200 entries for an action, an actor and dates, and the same
     filters as a CSV download.
   Fetched at sign-in, after each change, and every 15 s; a row form being filled in is kept
   until it is closed. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 15000;
  const AUDIT_LIMIT = 200;
  const state = { me: null, offset: 0, users: [], tokens: [], entries: [], editing: null, armed: null, timer: null,
                  seq: 0 };
  window.KiosqPeople = state;
  const ACTIONS = ["session.signed_in", "session.failed", "session.signed_out", "session.expired", "user.created",
                   "user.changed", "user.disabled", "user.enabled", "user.password_set", "token.created",
                   "token.revoked", "enroll_code.created", "terminal.enrolled", "terminal.revoked",
                   "application.personal_viewed", "application.accept", "application.review", "application.complete",
                   "application.return", "application.reject", "application.approve_rejection",
                   "application.deny_rejection"];

  K.addMessages({
    zh: {
      "people.title": "人员", "people.password": "初始密码", "people.create": "新建账号",
      "people.hint": "登录名：2–32 个小写字母、数字或 . _ -。密码至少 10 个字符，不含登录名。工作人员须填写窗口；"
        + "负责人不填窗口即为全厅值班负责人；管理员不填窗口。",
      "people.created": "已新建账号 {login}（{name}）", "people.none": "还没有账号：用下面的表单新建",
      "people.edit": "修改角色/窗口", "people.reset": "重置密码", "people.disable": "停用",
      "people.disable_confirm": "确认停用？", "people.enable": "启用", "people.save": "保存", "people.cancel": "取消",
      "people.new_password": "{login} 的新密码（至少 10 个字符）", "people.new_windows": "{login} 的角色和窗口",
      "people.disabled_msg": "{login} 已停用：其登录立即失效", "people.enabled_msg": "{login} 已启用",
      "people.password_msg": "{login} 的密码已重置：其已登录的会话全部失效", "people.changed_msg": "{login} 已修改",
      "people.you": "（本人）", "people.all_windows": "全部窗口", "people.bad_windows": "窗口请填写数字，用逗号分隔，如 1,2",
      "ucol.login": "登录名", "ucol.name": "姓名", "ucol.role": "角色", "ucol.windows": "窗口", "ucol.created": "创建时间",
      "ucol.last_sign_in": "最近登录", "ucol.sessions": "在线会话", "ucol.state": "状态", "ucol.action": "操作",
      "ustate.active": "正常", "ustate.disabled": "已停用",
      "tokens.title": "凭证", "tokens.hint": "供脚本、设备和自助终端使用的令牌（kiosq server token 生成）；吊销立即生效。",
      "tokens.revoke": "吊销", "tokens.revoke_confirm": "确认吊销？", "tokens.revoked_msg": "凭证 {name} 已吊销：立即失效",
      "tokens.none": "没有凭证", "tokens.never": "从未", "tokens.no_expiry": "长期有效",
      "tcol.name": "名称", "tcol.role": "角色", "tcol.windows": "窗口", "tcol.created": "创建时间",
      "tcol.last_used": "最近使用", "tcol.expires": "到期", "tcol.state": "状态", "tcol.action": "操作",
      "tstate.active": "有效", "tstate.expired": "已过期", "tstate.revoked": "已吊销", "role.terminal": "自助终端",
      "audit.title": "审计日志", "audit.action": "操作", "audit.actor": "操作人", "audit.csv": "导出 CSV",
      "audit.dates": "日期",
      "audit.count": "最新 {count} 条", "audit.more": "只显示最新 {count} 条：缩小日期范围，或导出 CSV",
      "audit.none": "没有符合条件的记录", "audit.at": "时间", "audit.address": "地址", "audit.target": "对象",
      "audit.detail": "详情",
      "act.session.signed_in": "登录", "act.session.failed": "登录失败", "act.session.signed_out": "退出",
      "act.session.expired": "会话过期", "act.user.created": "新建账号", "act.user.changed": "修改账号",
      "act.user.disabled": "停用账号", "act.user.enabled": "启用账号", "act.user.password_set": "设置密码",
      "act.token.created": "生成令牌", "act.token.revoked": "吊销令牌", "act.enroll_code.created": "生成注册码",
      "act.terminal.enrolled": "终端注册", "act.terminal.revoked": "吊销终端",
      "act.application.personal_viewed": "查看申请人完整信息", "act.application.accept": "申报件受理",
      "act.application.review": "申报件审查", "act.application.complete": "申报件办结",
      "act.application.return": "申报件补正", "act.application.reject": "申报件驳回申请",
      "act.application.approve_rejection": "批准驳回", "act.application.deny_rejection": "不批准驳回",
    },
    en: {
      "people.title": "People", "people.password": "First password", "people.create": "Create account",
      "people.hint": "Login: 2–32 lower-case letters, digits, . _ or -. Password: at least 10 characters, not "
        + "containing the login. Staff need windows; a supervisor without windows is the hall's duty supervisor; "
        + "admins take no windows.",
      "people.created": "Account {login} ({name}) created", "people.none": "No accounts yet: create one below",
      "people.edit": "Role / windows", "people.reset": "Reset password", "people.disable": "Disable",
      "people.disable_confirm": "Really disable?", "people.enable": "Enable", "people.save": "Save",
      "people.cancel": "Cancel", "people.new_password": "New password for {login} (at least 10 characters)",
      "people.new_windows": "Role and windows of {login}",
      "people.disabled_msg": "{login} disabled: signed out everywhere at once", "people.enabled_msg": "{login} enabled",
      "people.password_msg": "{login}'s password reset: their open sessions have ended",
      "people.changed_msg": "{login} changed", "people.you": " (you)", "people.all_windows": "all windows",
      "people.bad_windows": "Windows are numbers separated by commas, e.g. 1,2",
      "ucol.login": "Login", "ucol.name": "Name", "ucol.role": "Role", "ucol.windows": "Windows", "ucol.created": "Created",
      "ucol.last_sign_in": "Last sign-in", "ucol.sessions": "Sessions", "ucol.state": "State", "ucol.action": "",
      "ustate.active": "active", "ustate.disabled": "disabled",
      "tokens.title": "Credentials", "tokens.hint": "Tokens of scripts, devices and terminals (made with kiosq server "
        + "token); a revocation works at once.",
      "tokens.revoke": "Revoke", "tokens.revoke_confirm": "Really revoke?",
      "tokens.revoked_msg": "Token {name} revoked: it no longer works", "tokens.none": "No tokens",
      "tokens.never": "never", "tokens.no_expiry": "until revoked",
      "tcol.name": "Name", "tcol.role": "Role", "tcol.windows": "Windows", "tcol.created": "Created",
      "tcol.last_used": "Last used", "tcol.expires": "Expires", "tcol.state": "State", "tcol.action": "",
      "tstate.active": "active", "tstate.expired": "expired", "tstate.revoked": "revoked", "role.terminal": "terminal",
      "audit.title": "Audit log", "audit.action": "Action", "audit.actor": "By", "audit.csv": "Export CSV",
      "audit.dates": "From",
      "audit.count": "The newest {count}", "audit.more": "Only the newest {count} are shown: narrow the dates, or export "
        + "the CSV", "audit.none": "Nothing matches", "audit.at": "Time", "audit.address": "Address",
      "audit.target": "Target", "audit.detail": "Detail",
      "act.session.signed_in": "signed in", "act.session.failed": "sign-in failed", "act.session.signed_out": "signed out",
      "act.session.expired": "session expired", "act.user.created": "account created",
      "act.user.changed": "account changed", "act.user.disabled": "account disabled",
      "act.user.enabled": "account enabled", "act.user.password_set": "password set", "act.token.created": "token made",
      "act.token.revoked": "token revoked", "act.enroll_code.created": "enrollment code made",
      "act.terminal.enrolled": "terminal enrolled", "act.terminal.revoked": "terminal revoked",
      "act.application.personal_viewed": "applicant's record opened", "act.application.accept": "application accepted",
      "act.application.review": "application in review", "act.application.complete": "application completed",
      "act.application.return": "application returned", "act.application.reject": "rejection requested",
      "act.application.approve_rejection": "rejection approved", "act.application.deny_rejection": "rejection denied",
    },
  });

  // A server time (the hall's local time or UTC, ISO 8601) as "YYYY-MM-DD HH:MM" on the hall's clock.
  function when(iso) {
    const ms = Date.parse(iso || "");
    if (Number.isNaN(ms)) return "—";
    const d = new Date(ms + state.offset * 60000);
    return d.getUTCFullYear() + "-" + K.pad(d.getUTCMonth() + 1) + "-" + K.pad(d.getUTCDate()) + " "
      + K.pad(d.getUTCHours()) + ":" + K.pad(d.getUTCMinutes());
  }
  const windowsText = (windows) => (windows && windows.length ? windows.join(", ") : K.t("people.all_windows"));

  function say(id, text, ok) {
    $(id).textContent = text;
    $(id).className = ok ? "ok" : "error";
  }

  function failed(id, err) {
    if (err.status === 401 && window.KiosqAdmin && window.KiosqAdmin.signedOut) window.KiosqAdmin.signedOut(err.message);
    else say(id, err.message, false);
  }

  // "1, 2 3、4" -> [1, 2, 3, 4]; null when something else was typed.
  function parseWindows(text) {
    const parts = text.split(/[\s,，、]+/).filter(Boolean);
    if (!parts.every((p) => /^\d+$/.test(p))) return null;
    return parts.map(Number);
  }

  function head(keys) {
    const tr = K.el("tr");
    tr.append(...keys.map((key) => K.el("th", null, K.t(key))));
    return tr;
  }

  function noneRow(colspan, key) {
    const tr = K.el("tr", { class: "none" });
    tr.append(K.el("td", { colspan: String(colspan) }, K.t(key)));
    return tr;
  }

  function button(text, attrs, kind, onClick) {
    const b = K.el("button", Object.assign({ type: "button", class: "btn small " + (kind || "") }, attrs), text);
    b.addEventListener("click", onClick);
    return b;
  }

  // -- people ------------------------------------------------------------------------

  function userActions(u) {
    const cell = K.el("td", { "data-col": "action" });
    const box = K.el("div", { class: "row-actions" });
    const own = state.me && u.login === state.me.login;
    if (u.role !== "admin") {
      box.append(button(K.t("people.edit"), { "data-user-action": "edit" }, "secondary",
                        () => openEdit(u, "windows")));
    }
    box.append(button(K.t("people.reset"), { "data-user-action": "password" }, "secondary",
                      () => openEdit(u, "password")));
    if (u.disabled_at) {
      box.append(button(K.t("people.enable"), { "data-user-action": "enable" }, "", () => setDisabled(u.login, false)));
    } else if (!own) {
      const armed = state.armed === "user:" + u.login;
      box.append(button(K.t(armed ? "people.disable_confirm" : "people.disable"), { "data-user-action": "disable" },
                        "danger", () => {
        // Two clicks: the first arms the button, the second disables (no browser dialog).
        if (!armed) { state.armed = "user:" + u.login; renderUsers(true); return; }
        state.armed = null;
        setDisabled(u.login, true);
      }));
    }
    cell.append(box);
    return cell;
  }

  function editRow(u) {
    const e = state.editing;
    const tr = K.el("tr", { class: "edit-row", "data-edit-for": u.login });
    const td = K.el("td", { colspan: "9" });
    const form = K.el("form", { class: "actions note-form", autocomplete: "off" });
    if (e.kind === "password") {
      const label = K.el("label", { for: "user-new-password" }, K.t("people.new_password", { login: u.login }));
      const input = K.el("input", { id: "user-new-password", type: "password", autocomplete: "new-password",
                                    maxlength: "256" });
      input.value = e.password;
      input.addEventListener("input", () => { e.password = input.value; });
      form.append(label, input);
    } else {
      form.append(K.el("span", null, K.t("people.new_windows", { login: u.login })));
      const role = K.el("select", { id: "user-new-role" });
      for (const r of ["staff", "supervisor", "admin"]) role.append(K.el("option", { value: r }, K.t("role." + r)));
      role.value = e.role;
      role.addEventListener("change", () => { e.role = role.value; });
      const input = K.el("input", { id: "user-new-windows", size: "10", autocomplete: "off", placeholder: "1,2" });
      input.value = e.windows;
      input.addEventListener("input", () => { e.windows = input.value; });
      form.append(role, input);
    }
    const ok = K.el("button", { type: "submit", class: "btn small", id: "user-edit-ok" }, K.t("people.save"));
    const cancel = button(K.t("people.cancel"), { id: "user-edit-cancel" }, "secondary", closeEdit);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); saveEdit(); });
    form.append(ok, cancel);
    td.append(form);
    tr.append(td);
    return tr;
  }

  function renderUsers(force) {
    if (!state.me) return;
    if (state.editing && force !== true) return;  // keep the row form (and its focus) until it is closed
    const rows = [];
    for (const u of state.users) {
      const disabled = Boolean(u.disabled_at);
      const tr = K.el("tr", { "data-login": u.login, "data-disabled": String(disabled), class: disabled ? "disabled" : "" });
      const own = state.me && u.login === state.me.login;
      tr.append(K.el("td", { "data-col": "login" }, u.login + (own ? K.t("people.you") : "")),
                K.el("td", { "data-col": "name" }, u.name), K.el("td", { "data-col": "role" }, K.t("role." + u.role)),
                K.el("td", { "data-col": "windows" }, windowsText(u.windows)), K.el("td", null, when(u.created_at)),
                K.el("td", null, u.last_sign_in_at ? when(u.last_sign_in_at) : K.t("tokens.never")),
                K.el("td", { "data-col": "sessions" }, String(u.sessions === undefined ? "—" : u.sessions)),
                K.el("td", { "data-col": "state", class: disabled ? "over" : "" },
                     K.t(disabled ? "ustate.disabled" : "ustate.active") + (disabled ? " " + when(u.disabled_at) : "")),
                userActions(u));
      rows.push(tr);
      if (state.editing && state.editing.login === u.login) rows.push(editRow(u));
    }
    if (!rows.length) rows.push(noneRow(9, "people.none"));
    $("users-table").replaceChildren(head(["ucol.login", "ucol.name", "ucol.role", "ucol.windows", "ucol.created",
                                           "ucol.last_sign_in", "ucol.sessions", "ucol.state", "ucol.action"]), ...rows);
  }

  function openEdit(u, kind) {
    state.editing = { login: u.login, kind, password: "", role: u.role, windows: u.windows.join(",") };
    state.armed = null;
    renderUsers(true);
    $(kind === "password" ? "user-new-password" : "user-new-windows").focus();
  }

  function closeEdit() {
    state.editing = null;
    renderUsers();
  }

  async function saveEdit() {
    const e = state.editing;
    try {
      if (e.kind === "password") {
        await K.api("/api/users/" + encodeURIComponent(e.login) + "/password", { method: "POST",
                                                                                body: { password: e.password } });
        say("users-message", K.t("people.password_msg", { login: e.login }), true);
      } else {
        const windows = parseWindows(e.windows);
        if (windows === null) { say("users-message", K.t("people.bad_windows"), false); return; }
        await K.api("/api/users/" + encodeURIComponent(e.login), { method: "PATCH",
          body: { role: e.role, windows: e.role === "admin" ? [] : windows } });
        say("users-message", K.t("people.changed_msg", { login: e.login }), true);
      }
      state.editing = null;
      await loadAll();
    } catch (err) {
      failed("users-message", err);
    }
  }

  async function setDisabled(login, disabled) {
    try {
      await K.api("/api/users/" + encodeURIComponent(login), { method: "PATCH", body: { disabled } });
      say("users-message", K.t(disabled ? "people.disabled_msg" : "people.enabled_msg", { login }), true);
      await loadAll();
    } catch (err) {
      failed("users-message", err);
      renderUsers(true);
    }
  }

  async function createUser(ev) {
    ev.preventDefault();
    const windows = parseWindows($("user-windows").value);
    if (windows === null) { say("users-message", K.t("people.bad_windows"), false); return; }
    const body = { login: $("user-login").value.trim(), name: $("user-name").value.trim(), role: $("user-role").value,
                   windows, password: $("user-password").value };
    $("user-create").disabled = true;
    try {
      const user = await K.api("/api/users", { method: "POST", body });
      say("users-message", K.t("people.created", { login: user.login, name: user.name }), true);
      for (const id of ["user-login", "user-name", "user-windows", "user-password"]) $(id).value = "";
      await loadAll();
    } catch (err) {
      failed("users-message", err);  // too short a password, a login taken, no such window: the server's words
    } finally {
      $("user-create").disabled = false;
    }
  }

  // -- credentials ---------------------------------------------------------------------

  function renderTokens() {
    if (!state.me) return;
    const rows = state.tokens.map((t) => {
      const tr = K.el("tr", { "data-name": t.name, "data-state": t.state, "data-role": t.role, class: "token-" + t.state });
      const action = K.el("td", { "data-col": "action" });
      if (t.state === "active") {
        const armed = state.armed === "token:" + t.name;
        action.append(button(K.t(armed ? "tokens.revoke_confirm" : "tokens.revoke"), { "data-revoke-token": t.name },
                             "danger", () => {
          if (!armed) { state.armed = "token:" + t.name; renderTokens(); return; }
          state.armed = null;
          revokeToken(t.name);
        }));
      }
      const stateText = K.t("tstate." + t.state) + (t.state === "revoked" && t.revoked_at ? " " + when(t.revoked_at) : "");
      tr.append(K.el("td", { "data-col": "name" }, t.name), K.el("td", null, K.t("role." + t.role)),
                K.el("td", null, t.role === "staff" || t.role === "supervisor" ? windowsText(t.windows) : "—"),
                K.el("td", null, when(t.created_at)),
                K.el("td", null, t.last_used_at ? when(t.last_used_at) : K.t("tokens.never")),
                K.el("td", null, t.expires_at ? when(t.expires_at) : K.t("tokens.no_expiry")),
                K.el("td", { "data-col": "state", class: t.state === "active" ? "" : "over" }, stateText), action);
      return tr;
    });
    if (!rows.length) rows.push(noneRow(8, "tokens.none"));
    $("tokens-table").replaceChildren(head(["tcol.name", "tcol.role", "tcol.windows", "tcol.created", "tcol.last_used",
                                            "tcol.expires", "tcol.state", "tcol.action"]), ...rows);
  }

  async function revokeToken(name) {
    try {
      await K.api("/api/tokens/" + encodeURIComponent(name) + "/revoke", { method: "POST" });
      say("tokens-message", K.t("tokens.revoked_msg", { name }), true);
      await loadAll();
    } catch (err) {
      failed("tokens-message", err);
      renderTokens();
    }
  }

  // -- the audit log -------------------------------------------------------------------

  function auditQuery() {
    const q = new URLSearchParams();
    for (const [key, id] of [["action", "audit-action"], ["actor", "audit-actor"], ["from", "audit-from"],
                             ["to", "audit-to"]]) {
      const value = $(id).value.trim();
      if (value) q.set(key, value);
    }
    return q;
  }

  function actionLabel(action) {
    const text = K.t("act." + action);
    return text === "act." + action ? action : text;
  }

  function detailText(detail) {
    return Object.entries(detail || {}).map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v)))
      .join("; ");
  }

  function renderAudit() {
    if (!state.me) return;
    const rows = state.entries.map((a) => {
      const tr = K.el("tr", { "data-id": String(a.id), "data-action": a.action, "data-actor": a.actor || "" });
      const action = K.el("td", { "data-col": "action" });
      action.append(K.el("span", null, actionLabel(a.action)), K.el("br"), K.el("small", null, a.action));
      tr.append(K.el("td", { "data-col": "at" }, when(a.at)), action, K.el("td", { "data-col": "actor" }, a.actor || ""),
                K.el("td", null, a.address || ""), K.el("td", { "data-col": "target" }, a.target || ""),
                K.el("td", { "data-col": "detail" }, detailText(a.detail)));
      return tr;
    });
    if (!rows.length) rows.push(noneRow(6, "audit.none"));
    $("audit-table").replaceChildren(head(["audit.at", "audit.action", "audit.actor", "audit.address", "audit.target",
                                           "audit.detail"]), ...rows);
    $("audit-count").textContent = state.entries.length >= AUDIT_LIMIT ? K.t("audit.more", { count: AUDIT_LIMIT })
      : K.t("audit.count", { count: state.entries.length });
  }

  function renderCsvLink() {
    const q = auditQuery();
    q.set("format", "csv");
    q.set("limit", "10000");
    $("audit-csv").href = "/api/audit?" + q;
  }

  // -- loading and wiring --------------------------------------------------------------

  async function loadAll() {
    if (!state.me) return;
    const seq = ++state.seq;
    const q = auditQuery();
    q.set("limit", String(AUDIT_LIMIT));
    const [users, tokens, audit] = await Promise.all([K.api("/api/users"), K.api("/api/tokens"),
                                                      K.api("/api/audit?" + q)]);
    if (seq !== state.seq || !state.me) return;  // a newer load is under way, or signed out
    Object.assign(state, { users: users.users, tokens: tokens.tokens, entries: audit.entries });
    renderUsers();
    renderTokens();
    renderAudit();
  }
  const refresh = () => loadAll().catch((err) => failed("audit-message", err));

  function tick() {
    clearTimeout(state.timer);
    if (!state.me) return;
    refresh().finally(() => { if (state.me) state.timer = setTimeout(tick, REFRESH_MS); });
  }

  document.addEventListener("kiosq:admin", (e) => {
    const { what } = e.detail;
    if (what === "signed-in") {
      Object.assign(state, { me: e.detail.me, offset: e.detail.offsetMinutes || 0 });
      tick();
    } else if (what === "signed-out") {
      clearTimeout(state.timer);
      Object.assign(state, { me: null, users: [], tokens: [], entries: [], editing: null, armed: null });
      state.seq++;
      for (const id of ["users-table", "tokens-table", "audit-table"]) $(id).replaceChildren();
    }
  });
  $("audit-actions").replaceChildren(...["session.*", "user.*", "token.*", "terminal.*", "application.*", ...ACTIONS]
    .map((a) => K.el("option", { value: a })));
  $("user-form").addEventListener("submit", createUser);
  $("audit-filters").addEventListener("submit", (e) => { e.preventDefault(); renderCsvLink(); refresh(); });
  $("audit-filters").addEventListener("input", renderCsvLink);
  document.addEventListener("kiosq:lang", () => { renderUsers(true); renderTokens(); renderAudit(); });
  renderCsvLink();
  K.applyLang();  // this section's own words, added above
})();
