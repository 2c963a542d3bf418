/* /admin's fleet section: every terminal (online, offline, paper, content, devices, outbox)
   with the alert list, enrollment codes, revocation, and the content rollout (publish a
   bundle kept on the server, roll back). Live: fetched again on terminal.* and content.*
   events and every 10 s (more often with a short [fleet] online_seconds), so a terminal that stops sending heartbeats turns offline without
   any event. PIN lockouts (a terminal's staff PIN tried wrongly too often) show in its row
   and as alerts; so do refusals over the terminal's per-minute limits in the last hour. Starts when admin.js has signed in (the kiosq:admin event), stops at
   sign-out; requests go with the session cookie. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 10000;
  const state = { on: false, stream: null, timer: null, fleet: null, content: null, armed: null };
  window.KiosqFleet = state;

  K.addMessages({
    zh: {
      "fleet.title": "自助终端", "fleet.terminal_id": "终端编号", "fleet.ttl": "有效期", "fleet.ttl_30m": "30 分钟",
      "fleet.ttl_1h": "1 小时", "fleet.ttl_1d": "1 天", "fleet.make_code": "生成注册码", "fleet.code_for": "注册码",
      "fleet.code_info": "终端 {terminal} 使用，一次有效，{until} 前有效：在终端上运行 kiosq enroll 注册码 --server 地址",
      "fleet.summary": "共 {total} 台 · 在线 {online} · 离线 {offline} · 告警 {alerts}", "fleet.no_alerts": "无告警",
      "fleet.none": "还没有终端：生成注册码，在终端上注册", "fleet.revoke": "吊销", "fleet.revoke_confirm": "确认吊销？",
      "fleet.revoked_msg": "终端 {terminal} 已吊销：其令牌立即失效", "fleet.need_id": "请填写终端编号，如 T03",
      "fcol.terminal": "终端", "fcol.state": "状态", "fcol.last_seen": "最后心跳", "fcol.software": "软件版本",
      "fcol.content": "内容版本", "fcol.paper": "纸张", "fcol.devices": "设备", "fcol.outbox": "待发 / 被拒",
      "fcol.error": "最近错误", "fcol.action": "操作",
      "fstate.online": "在线", "fstate.offline": "离线", "fstate.revoked": "已吊销", "fstate.outdated": "（旧）",
      "paper.ok": "正常", "paper.low": "将尽", "paper.out": "缺纸", "paper.none": "无打印机", "paper.unknown": "未知",
      "alert.offline": "离线", "alert.paper_out": "缺纸", "alert.paper_low": "纸将用尽", "alert.outdated": "内容过旧",
      "alert.device": "设备故障", "alert.outbox_refused": "申报被拒待处理", "alert.pin_lockout": "PIN 输错锁定",
      "fcol.pin": "PIN 锁定", "fleet.pin_locked_until": "锁定至 {until}", "fleet.pin_times": "{count} 次",
      "fcol.throttled": "限流（1 小时）", "fleet.throttled": "{count} 次，最近 {at}", "alert.throttled": "超出频率限制",
      "content.title": "内容发布", "content.rollback": "回滚到上一版本", "content.publish": "发布",
      "content.published": "已发布：{version}（{items} 项）", "content.nothing": "未发布内容包：终端使用自带目录",
      "content.previous": "上一版本", "content.current": "当前",
      "content.done": "已发布 {version}：终端在下一次心跳时更新",
      "ccol.version": "版本", "ccol.items": "事项数", "ccol.created": "生成时间", "ccol.state": "状态",
    },
    en: {
      "fleet.title": "Terminals", "fleet.terminal_id": "Terminal id", "fleet.ttl": "Valid for", "fleet.ttl_30m": "30 minutes",
      "fleet.ttl_1h": "1 hour", "fleet.ttl_1d": "1 day", "fleet.make_code": "Make enrollment code",
      "fleet.code_for": "Enrollment code",
      "fleet.code_info": "for terminal {terminal}, works once until {until}: on the terminal run kiosq enroll CODE --server URL",
      "fleet.summary": "{total} terminals · {online} online · {offline} offline · {alerts} alerts",
      "fleet.no_alerts": "No alerts", "fleet.none": "No terminals yet: make a code and enroll one",
      "fleet.revoke": "Revoke", "fleet.revoke_confirm": "Really revoke?",
      "fleet.revoked_msg": "Terminal {terminal} revoked: its token no longer works",
      "fleet.need_id": "Enter a terminal id, e.g. T03",
      "fcol.terminal": "Terminal", "fcol.state": "State", "fcol.last_seen": "Last heartbeat", "fcol.software": "Software",
      "fcol.content": "Content", "fcol.paper": "Paper", "fcol.devices": "Devices", "fcol.outbox": "Waiting / refused",
      "fcol.error": "Last error", "fcol.action": "",
      "fstate.online": "online", "fstate.offline": "offline", "fstate.revoked": "revoked", "fstate.outdated": " (old)",
      "paper.ok": "ok", "paper.low": "low", "paper.out": "out", "paper.none": "no printer", "paper.unknown": "unknown",
      "alert.offline": "offline", "alert.paper_out": "paper out", "alert.paper_low": "paper low",
      "alert.outdated": "old content", "alert.device": "device fault", "alert.outbox_refused": "refused applications",
      "alert.pin_lockout": "PIN locked out", "fcol.pin": "PIN lockouts", "fleet.pin_locked_until": "locked until {until}",
      "fleet.pin_times": "{count}×",
      "fcol.throttled": "Throttled (1 h)", "fleet.throttled": "{count}×, last {at}", "alert.throttled": "over its rate limits",
      "content.title": "Content rollout", "content.rollback": "Roll back to the previous bundle", "content.publish": "Publish",
      "content.published": "Published: {version} ({items} items)",
      "content.nothing": "Nothing published: terminals use the catalog they have",
      "content.previous": "previous", "content.current": "published",
      "content.done": "Published {version}: terminals update at their next heartbeat",
      "ccol.version": "Version", "ccol.items": "Items", "ccol.created": "Built", "ccol.state": "State",
    },
  });

  const fmt = (v) => (v === null || v === undefined || v === "" ? "—" : String(v));
  const when = (iso) => (iso ? iso.slice(0, 19).replace("T", " ") : "—");

  function say(id, text, ok) {
    $(id).textContent = text;
    $(id).className = ok ? "ok" : "error";
  }

  // An error in the section's message line, or (401: the session ended) the sign-in form.
  function failed(id, err) {
    if (err.status === 401 && window.KiosqAdmin && window.KiosqAdmin.signedOut) window.KiosqAdmin.signedOut(err.message);
    else say(id, err.message, false);
  }

  // An alert kind this page has no words for (a newer server) is shown as the server names it.
  function alertText(kind) {
    const text = K.t("alert." + kind);
    return text === "alert." + kind ? kind : text;
  }

  // Wrong-PIN lockouts: how many today, and until when the terminal is locked (absent on an
  // older server: a dash).
  function pinCell(t) {
    const locked = t.pin_locked_until;
    const td = K.el("td", { "data-col": "pin", class: locked ? "over" : t.pin_lockouts ? "warn" : "" });
    if (t.pin_lockouts === undefined && locked === undefined) { td.textContent = "—"; return td; }
    const parts = [];
    if (t.pin_lockouts !== undefined && t.pin_lockouts !== null) parts.push(K.t("fleet.pin_times", { count: t.pin_lockouts }));
    if (locked) parts.push(K.t("fleet.pin_locked_until", { until: when(locked) }));
    td.textContent = parts.join(" · ") || "—";
    if (locked) td.dataset.lockedUntil = locked;
    return td;
  }

  // Refused (429) over [terminals] tickets_per_minute or lookups_per_minute in the last hour.
  function throttledCell(t) {
    const n = t.throttled || 0;
    const td = K.el("td", { "data-col": "throttled", "data-throttled": String(n), class: n ? "warn" : "" });
    td.textContent = n ? K.t("fleet.throttled", { count: n, at: when(t.throttled_last_at) }) : "—";
    if (n) td.title = "tickets " + t.throttled_tickets + " · lookups " + t.throttled_lookups;
    return td;
  }

  function stateCell(t) {
    const key = t.revoked ? "revoked" : t.online ? "online" : "offline";
    return K.el("td", { class: key, "data-col": "state" }, K.t("fstate." + key));
  }

  function revokeButton(t) {
    const button = K.el("button", { class: "btn small danger", type: "button", "data-revoke": t.terminal },
                        K.t(state.armed === t.terminal ? "fleet.revoke_confirm" : "fleet.revoke"));
    // Two clicks: the first arms the button, the second revokes (no browser dialog).
    button.addEventListener("click", () => {
      if (state.armed !== t.terminal) { state.armed = t.terminal; renderFleet(); return; }
      state.armed = null;
      revoke(t.terminal);
    });
    return button;
  }

  function renderFleet() {
    const f = state.fleet;
    if (!f) return;
    const online = f.terminals.filter((t) => t.online).length;
    const active = f.terminals.filter((t) => !t.revoked).length;
    $("fleet-summary").textContent = K.t("fleet.summary", { total: active, online, offline: active - online,
                                                            alerts: f.alerts.length });
    $("fleet-alerts").replaceChildren(...(f.alerts.length ? f.alerts.map((a) =>
      K.el("li", { class: a.kind, "data-terminal": a.terminal, "data-kind": a.kind },
           a.terminal + " · " + alertText(a.kind) + (a.detail ? " · " + a.detail : "")))
      : [K.el("li", { class: "none" }, K.t("fleet.no_alerts"))]));
    const head = K.el("tr");
    head.append(...["terminal", "state", "last_seen", "software", "content", "paper", "devices", "outbox", "pin",
                    "throttled", "error", "action"].map((c) => K.el("th", null, K.t("fcol." + c))));
    const rows = f.terminals.map((t) => {
      const tr = K.el("tr", { "data-terminal": t.terminal, "data-online": String(t.online),
                              "data-revoked": String(t.revoked) });
      const devices = Object.entries(t.devices || {}).map(([d, s]) => d + ": " + s).join(", ");
      const action = K.el("td", { "data-col": "action" });
      if (!t.revoked) action.append(revokeButton(t));
      tr.append(K.el("td", null, t.terminal), stateCell(t), K.el("td", null, when(t.last_seen)),
                K.el("td", null, fmt(t.software_version)),
                K.el("td", { class: t.outdated ? "warn" : "", "data-col": "content" },
                     fmt(t.content_version) + (t.outdated ? K.t("fstate.outdated") : "")),
                K.el("td", { class: t.paper === "out" ? "over" : t.paper === "low" ? "warn" : "", "data-col": "paper" },
                     K.t("paper." + t.paper)),
                K.el("td", null, devices || "—"),
                K.el("td", null, fmt(t.outbox_waiting) + " / " + fmt(t.outbox_refused)), pinCell(t), throttledCell(t),
                K.el("td", null, fmt(t.last_error)), action);
      return tr;
    });
    if (!rows.length) {
      const none = K.el("tr", { class: "none" });
      none.append(K.el("td", { colspan: "12" }, K.t("fleet.none")));
      rows.push(none);
    }
    $("fleet-table").replaceChildren(head, ...rows);
  }

  function renderContent() {
    const c = state.content;
    if (!c) return;
    $("content-published").textContent = c.published
      ? K.t("content.published", { version: c.published.version, items: c.published.items }) : K.t("content.nothing");
    const head = K.el("tr");
    head.append(...["version", "items", "created", "state"].map((col) => K.el("th", null, K.t("ccol." + col))),
                K.el("th"));
    $("content-bundles").replaceChildren(head, ...c.bundles.map((b) => {
      const tr = K.el("tr", { "data-version": b.version });
      const action = K.el("td");
      if (!b.published) {
        const button = K.el("button", { class: "btn small", type: "button", "data-publish": b.version },
                            K.t("content.publish"));
        button.addEventListener("click", () => publish(b.version));
        action.append(button);
      }
      tr.append(K.el("td", null, b.version), K.el("td", null, String(b.items)), K.el("td", null, when(b.created)),
                K.el("td", null, b.published ? K.t("content.current") : b.previous ? K.t("content.previous") : ""),
                action);
      return tr;
    }));
    $("content-rollback").disabled = !c.previous;
  }

  async function load() {
    const [fleet, content] = await Promise.all([K.api("/api/terminals"), K.api("/api/content")]);
    Object.assign(state, { fleet, content });
    renderFleet();
    renderContent();
  }
  const refresh = () => (state.on ? load().catch((err) => failed("fleet-message", err)) : Promise.resolve());

  async function makeCode(e) {
    e.preventDefault();
    const terminal = $("enroll-terminal").value.trim();
    if (!terminal) { say("fleet-message", K.t("fleet.need_id"), false); return; }
    try {
      const made = await K.api("/api/terminals/enroll-codes", { method: "POST",
        body: { terminal, ttl_minutes: Number($("enroll-ttl").value) } });
      $("enroll-code").textContent = made.code;
      $("enroll-info").textContent = K.t("fleet.code_info", { terminal: made.terminal, until: when(made.expires_at) });
      $("enroll-result").classList.remove("hidden");
      say("fleet-message", "", true);
    } catch (err) {
      failed("fleet-message", err);
    }
  }

  async function revoke(terminal) {
    try {
      await K.api("/api/terminals/" + encodeURIComponent(terminal) + "/revoke", { method: "POST" });
      say("fleet-message", K.t("fleet.revoked_msg", { terminal }), true);
      await load();
    } catch (err) {
      failed("fleet-message", err);
    }
  }

  async function publish(version) {
    try {
      state.content = await K.api("/api/content/publish", { method: "POST", body: { version } });
      say("content-message", K.t("content.done", { version }), true);
      await load();
    } catch (err) {
      failed("content-message", err);
    }
  }

  async function rollback() {
    try {
      const content = await K.api("/api/content/rollback", { method: "POST" });
      say("content-message", K.t("content.done", { version: content.published.version }), true);
      await load();
    } catch (err) {
      failed("content-message", err);
    }
  }

  document.addEventListener("kiosq:admin", (e) => {
    if (e.detail.what === "signed-out") {
      state.on = false;
      clearTimeout(state.timer);
      if (state.stream) { state.stream.close(); state.stream = null; }  // the next person opens their own
      return;
    }
    if (e.detail.what !== "signed-in" || state.on) return;  // started already
    state.on = true;
    if (!state.stream) {
      state.stream = K.stream("/api/staff/events", e.detail.lastEventId, K.debounce(refresh, 300), null,
                              K.fleetEvents);
    }
    // Every 10 s, or twice per online window where the hall sets a shorter one.
    const tick = () => refresh().finally(() => {
      if (!state.on) return;
      const windowMs = state.fleet ? state.fleet.online_seconds * 500 : REFRESH_MS;
      state.timer = setTimeout(tick, Math.max(500, Math.min(REFRESH_MS, windowMs)));
    });
    tick();
  });
  document.addEventListener("kiosq:lang", () => { K.applyLang(); renderFleet(); renderContent(); });
  $("enroll-form").addEventListener("submit", makeCode);
  $("content-rollback").addEventListener("click", rollback);
})();
