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
                   "application.deny_rejection", "retention.ran"];

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
