/* kiosq pages: messages in two languages, the JSON API, and the live event stream.
   Plain script (no build step): everything hangs off window.Kiosq. */
(function () {
  "use strict";

  const messages = {
    zh: {
      "display.now": "请", "display.to": "到", "display.window_suffix": "号窗口", "display.do": "办理",
      "display.recent": "最近呼叫", "display.windows": "窗口", "display.waiting": "等候人数",
      "display.idle": "暂无呼叫", "display.paused": "暂停服务", "display.people": "人",
      "display.enable_sound": "点击开启语音播报", "display.reconnecting": "正在重新连接…",
      "display.no_voice": "语音不可用",
      "lang.switch": "English",
      "console.title": "窗口工作台", "console.sign_in": "登录",
      "console.sign_out": "退出", "console.current": "当前号码", "console.none": "无",
      "console.elapsed": "已用时", "console.call_next": "叫下一位", "console.recall": "重呼",
      "console.start": "开始办理", "console.finish": "办结", "console.no_show": "过号",
      "console.pause": "暂停", "console.resume": "恢复", "console.transfer": "转移到",
      "console.reinstate": "恢复过号", "console.waiting": "本窗口业务等候",
      "console.shortcuts": "快捷键：F1 叫号 · F2 重呼 · F3 开始 · F4 办结 · F6 过号 · F8 暂停/恢复",
      "console.state_open": "服务中", "console.state_paused": "已暂停",
      "signin.login": "登录名", "signin.password": "密码", "signin.signed_in_as": "已登录：{name}（{login}）· {role}",
      "signin.not_here": "{name}（{login}）可在 {windows} 号窗口办理，不能在本窗口（{window} 号）：请在自己的窗口登录，或换一个账号",
      "signin.no_windows": "{name}（{login}）是{role}，不能在窗口办理", "signin.needs_admin":
        "/admin 需要管理员账号：{name}（{login}）是{role}。请用管理员账号登录。",
      "signin.empty": "请输入登录名和密码", "signin.signed_out": "已退出",
      "follow.title": "我的排队", "follow.number": "您的号码", "follow.ahead": "前面还有",
      "follow.eta": "预计等候", "follow.minutes": "分钟", "follow.called": "请到", "follow.now": "现在轮到您了",
      "follow.done": "已办结，谢谢", "follow.gone": "此号码已失效", "follow.waiting": "等候中",
      "follow.not_found": "找不到此号码，请检查链接或小票上的二维码",
      "app.title": "申请进度", "app.number": "受理编号", "app.code": "请输入回执上的查询密码", "app.look": "查询",
      "app.no_match": "受理编号或查询密码不对，请核对回执后再试", "app.submitted": "提交于 {at}",
      "app.promised": "承诺办结 {date}", "app.pending_rejection": "（窗口意见待负责人审核）",
      "app.status.submitted": "已提交", "app.status.accepted": "已受理", "app.status.in_review": "审查中",
      "app.status.returned": "需补正材料", "app.status.completed": "已办结", "app.status.rejected": "不予受理",
      "admin.title": "大厅管理", "admin.waiting_now": "当前等候",
      "admin.sla": "超时等候（超过 {minutes} 分钟）", "admin.no_breach": "无超时等候",
      "admin.by_service": "按业务", "admin.by_window": "按窗口", "admin.chart": "全天等候人数",
      "admin.notice": "大厅公告", "admin.save": "保存", "admin.export": "导出 CSV",
      "admin.voice": "语音播报", "admin.voice_ok": "可用", "admin.day": "营业日",
      "col.name": "名称", "col.issued": "取号", "col.served": "办结", "col.no_show": "过号",
      "col.waiting": "等候", "col.wait_mean": "平均等候(分)", "col.wait_median": "等候中位数(分)",
      "col.wait_p90": "等候P90(分)", "col.service_mean": "平均办理(分)", "col.service_p90": "办理P90(分)",
      "col.no_show_rate": "过号率", "col.per_hour": "每小时办结", "col.waited": "已等(分)",
      "error.network": "连接服务器失败", "saved": "已保存",
      "status.waiting": "等候中", "status.called": "已呼叫", "status.serving": "办理中", "status.done": "已办结",
      "status.no_show": "过号", "status.cancelled": "已取消", "status.transferred": "已转移",
      "window.paused": "本窗口已暂停", "window.resumed": "本窗口已恢复服务",
      "role.staff": "工作人员", "role.supervisor": "负责人", "role.admin": "管理员",
      "apps.title": "申报件", "apps.filter_status": "状态", "apps.filter_due": "期限",
      "apps.open": "在办", "apps.all": "全部", "apps.pending": "待审批驳回", "apps.due_any": "全部期限",
      "apps.due_near": "临近时限（≥80%）", "apps.due_over": "已超期", "apps.none": "没有符合条件的申报件",
      "apps.count": "共 {count} 件", "apps.no": "受理号", "apps.item": "事项", "apps.applicant": "申请人",
      "apps.submitted": "提交时间", "apps.promised": "承诺办结日期", "apps.status": "状态", "apps.actions": "操作",
      "apps.days_left": "剩 {days} 个工作日", "apps.due_today": "今日到期", "apps.days_over": "超期 {days} 个工作日",
      "apps.overdue": "已超期", "apps.near": "临近", "apps.pending_tag": "待负责人审批",
      "apps.accept": "受理", "apps.review": "审查", "apps.complete": "办结", "apps.return": "补正",
      "apps.reject": "不予受理/驳回", "apps.approve_rejection": "批准驳回", "apps.deny_rejection": "不批准",
      "apps.personal": "查看完整信息", "apps.hide_personal": "隐藏", "apps.note": "说明",
      "apps.note_return": "补正：需补充哪些材料（必填）", "apps.note_reject": "驳回理由（必填，需负责人审批）", "apps.note_masked": "备注中的身份证号、手机号、银行卡号会被自动遮挡，请勿填写其他个人信息。",
      "apps.confirm": "确定", "apps.cancel": "取消", "apps.done": "{no} · {status}",
      "apps.requested": "{no} · 已提交驳回，待负责人审批", "apps.personal_title": "申请人完整信息",
      "apps.personal_note": "仅供办理本件使用；已记入办理记录", "apps.values": "表单内容",
      "apps.id_number": "身份证号", "apps.name": "姓名", "apps.phone": "电话", "apps.address": "地址",
      "apps.source": "来源",
      "appstatus.submitted": "待受理", "appstatus.accepted": "已受理", "appstatus.in_review": "审查中",
      "appstatus.returned": "补正中", "appstatus.completed": "已办结", "appstatus.rejected": "不予受理",
      "admin.apps": "申报件办理", "admin.apps_period": "申报日期", "admin.apps_to": "至", "admin.apps_show": "查询",
      "admin.apps_export": "导出申报统计 CSV", "admin.apps_by_department": "按部门", "admin.apps_by_item": "按事项",
      "admin.completion_rate": "办结率", "admin.early_rate": "提前办结率", "admin.warnings": "预警（≥80%）",
      "admin.overdue": "超期", "admin.submitted": "申报数", "admin.notifications": "通知记录（webhook）",
      "admin.no_webhook": "未配置 webhook：状态变化不发送通知", "admin.no_notifications": "暂无通知",
      "acol.submitted": "申报", "acol.completed": "办结", "acol.rejected": "不予受理", "acol.returned": "补正中",
      "acol.open": "在办", "acol.completion_rate": "办结率", "acol.completed_early": "提前办结",
      "acol.early_completion_rate": "提前办结率", "acol.completed_late": "超期办结", "acol.warnings": "预警",
      "acol.overdue": "超期", "acol.over_legal": "超法定时限", "acol.department": "部门",
      "ncol.created": "时间", "ncol.no": "受理号", "ncol.status": "状态", "ncol.state": "发送",
      "ncol.attempts": "次数", "ncol.error": "错误",
      "nstate.queued": "待发送", "nstate.sent": "已发送", "nstate.failed": "失败",
    },
    en: {
      "display.now": "", "display.to": "to", "display.window_suffix": "", "display.do": "",
      "display.recent": "Recent calls", "display.windows": "Windows", "display.waiting": "Waiting",
      "display.idle": "No calls yet", "display.paused": "Paused", "display.people": "",
      "display.enable_sound": "Tap to enable announcements", "display.reconnecting": "Reconnecting…",
      "display.no_voice": "No voice",
      "lang.switch": "中文",
      "console.title": "Window console", "console.sign_in": "Sign in",
      "console.sign_out": "Sign out", "console.current": "Current ticket", "console.none": "none",
      "console.elapsed": "Elapsed", "console.call_next": "Call next", "console.recall": "Recall",
      "console.start": "Start", "console.finish": "Finish", "console.no_show": "No-show",
      "console.pause": "Pause", "console.resume": "Resume", "console.transfer": "Transfer to",
      "console.reinstate": "Reinstate", "console.waiting": "Waiting for this window",
      "console.shortcuts": "Keys: F1 call · F2 recall · F3 start · F4 finish · F6 no-show · F8 pause/resume",
      "console.state_open": "Open", "console.state_paused": "Paused",
      "signin.login": "Login", "signin.password": "Password", "signin.signed_in_as": "Signed in: {name} ({login}) · {role}",
      "signin.not_here": "{name} ({login}) acts at window {windows}, not at this one (window {window}): sign in at your own window, or as someone else",
      "signin.no_windows": "{name} ({login}) is {role} and cannot act at a window", "signin.needs_admin":
        "/admin needs an admin account: {name} ({login}) is {role}. Sign in with an admin account.",
      "signin.empty": "Enter your login and password", "signin.signed_out": "Signed out",
      "follow.title": "My ticket", "follow.number": "Your number", "follow.ahead": "People ahead",
      "follow.eta": "Estimated wait", "follow.minutes": "min", "follow.called": "Please go to",
      "follow.now": "It is your turn", "follow.done": "Done, thank you", "follow.gone": "This ticket is no longer valid",
      "follow.waiting": "Waiting", "follow.not_found": "No such ticket: check the link or the QR code on your slip",
      "app.title": "Application progress", "app.number": "Tracking number",
      "app.code": "The lookup code on your receipt", "app.look": "Look up",
      "app.no_match": "The number or the lookup code does not match; please check the receipt and try again",
      "app.submitted": "Submitted {at}", "app.promised": "Promised by {date}",
      "app.pending_rejection": "(the window's decision awaits a supervisor)",
      "app.status.submitted": "Submitted", "app.status.accepted": "Accepted", "app.status.in_review": "In review",
      "app.status.returned": "More material needed", "app.status.completed": "Completed",
      "app.status.rejected": "Rejected",
      "admin.title": "Hall dashboard", "admin.waiting_now": "Waiting now",
      "admin.sla": "Waiting too long (over {minutes} min)", "admin.no_breach": "Nobody waits too long",
      "admin.by_service": "By service", "admin.by_window": "By window", "admin.chart": "Waiting over the day",
      "admin.notice": "Hall notice", "admin.save": "Save", "admin.export": "Export CSV",
      "admin.voice": "Voice", "admin.voice_ok": "available", "admin.day": "Business day",
      "col.name": "Name", "col.issued": "Issued", "col.served": "Served", "col.no_show": "No-shows",
      "col.waiting": "Waiting", "col.wait_mean": "Wait mean (min)", "col.wait_median": "Wait median (min)",
      "col.wait_p90": "Wait p90 (min)", "col.service_mean": "Service mean (min)", "col.service_p90": "Service p90 (min)",
      "col.no_show_rate": "No-show rate", "col.per_hour": "Served per hour", "col.waited": "Waited (min)",
      "error.network": "Cannot reach the server", "saved": "Saved",
      "status.waiting": "waiting", "status.called": "called", "status.serving": "being served", "status.done": "done",
      "status.no_show": "no-show", "status.cancelled": "cancelled", "status.transferred": "transferred",
      "window.paused": "This window is paused", "window.resumed": "This window is open again",
      "role.staff": "staff", "role.supervisor": "supervisor", "role.admin": "admin",
      "apps.title": "Applications", "apps.filter_status": "Status", "apps.filter_due": "Deadline",
      "apps.open": "Open", "apps.all": "All", "apps.pending": "Rejection pending", "apps.due_any": "Any deadline",
      "apps.due_near": "Near (≥ 80 % used)", "apps.due_over": "Overdue", "apps.none": "No applications match",
      "apps.count": "{count} in all", "apps.no": "Tracking no.", "apps.item": "Item", "apps.applicant": "Applicant",
      "apps.submitted": "Submitted", "apps.promised": "Promised by", "apps.status": "Status", "apps.actions": "Actions",
      "apps.days_left": "{days} working days left", "apps.due_today": "due today", "apps.days_over": "{days} working days over",
      "apps.overdue": "overdue", "apps.near": "near", "apps.pending_tag": "Awaiting supervisor approval",
      "apps.accept": "Accept", "apps.review": "Review", "apps.complete": "Complete", "apps.return": "Return (补正)",
      "apps.reject": "Reject", "apps.approve_rejection": "Approve rejection", "apps.deny_rejection": "Deny rejection",
      "apps.personal": "Show full record", "apps.hide_personal": "Hide", "apps.note": "Note",
      "apps.note_return": "Return: which material is missing (required)",
      "apps.note_reject": "Ground for rejection (required; a supervisor approves)", "apps.note_masked": "ID, phone and bank-card numbers in a note are masked automatically; write no other personal data.",
      "apps.confirm": "OK", "apps.cancel": "Cancel", "apps.done": "{no} · {status}",
      "apps.requested": "{no} · rejection requested, awaiting a supervisor", "apps.personal_title": "Applicant's full record",
      "apps.personal_note": "For processing this application only; the opening is recorded", "apps.values": "Form",
      "apps.id_number": "ID number", "apps.name": "Name", "apps.phone": "Phone", "apps.address": "Address",
      "apps.source": "Source",
      "appstatus.submitted": "submitted", "appstatus.accepted": "accepted", "appstatus.in_review": "in review",
      "appstatus.returned": "returned (补正)", "appstatus.completed": "completed", "appstatus.rejected": "rejected",
      "admin.apps": "Applications", "admin.apps_period": "Filed from", "admin.apps_to": "to", "admin.apps_show": "Show",
      "admin.apps_export": "Export application figures (CSV)", "admin.apps_by_department": "By department",
      "admin.apps_by_item": "By item", "admin.completion_rate": "Completion rate (办结率)",
      "admin.early_rate": "Early completion (提前办结率)", "admin.warnings": "Warnings (≥ 80 %)",
      "admin.overdue": "Overdue", "admin.submitted": "Filed", "admin.notifications": "Notifications (webhook)",
      "admin.no_webhook": "No webhook configured: changes are not notified", "admin.no_notifications": "No notifications yet",
      "acol.submitted": "Filed", "acol.completed": "Completed", "acol.rejected": "Rejected", "acol.returned": "Returned",
      "acol.open": "Open", "acol.completion_rate": "Completion rate", "acol.completed_early": "Early",
      "acol.early_completion_rate": "Early rate", "acol.completed_late": "Late", "acol.warnings": "Warnings",
      "acol.overdue": "Overdue", "acol.over_legal": "Over legal limit", "acol.department": "Department",
      "ncol.created": "Time", "ncol.no": "Tracking no.", "ncol.status": "Status", "ncol.state": "Delivery",
      "ncol.attempts": "Tries", "ncol.error": "Error",
      "nstate.queued": "queued", "nstate.sent": "sent", "nstate.failed": "failed",
    },
  };

  const params = new URLSearchParams(location.search);
  const K = {
    lang: params.get("lang") || localStorage.getItem("kiosq.lang") || "zh",
    // Every event type the server sends (docs/architecture.md).
    eventTypes: ["ticket.issued", "ticket.called", "ticket.recalled", "ticket.started", "ticket.finished",
                 "ticket.no_show", "ticket.reinstated", "ticket.transferred", "ticket.cancelled",
                 "window.paused", "window.resumed", "hall.notice"],
    // Applications (filed, and each step of their life): only pages that show them listen.
    applicationEvents: ["application.submitted", "application.changed"],
    // Terminals and content rollout: /admin's fleet section listens.
    fleetEvents: ["terminal.enrolled", "terminal.revoked", "terminal.changed", "content.published",
                  "content.rolled_back"],
  };
  if (!messages[K.lang]) K.lang = "zh";

  /* More messages from a page's own script: {zh: {...}, en: {...}}. */
  K.addMessages = function (more) {
    for (const [lang, texts] of Object.entries(more)) Object.assign(messages[lang] || (messages[lang] = {}), texts);
  };

  K.t = function (key, vars) {
    let text = messages[K.lang][key];
    if (text === undefined) text = messages.zh[key] !== undefined ? messages.zh[key] : key;
    for (const [name, value] of Object.entries(vars || {})) text = text.replace("{" + name + "}", value);
    return text;
  };

  K.applyLang = function (root) {
    document.documentElement.lang = K.lang === "zh" ? "zh-CN" : "en";
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = K.t(el.dataset.i18n); });
  };

  K.setLang = function (lang) {
    K.lang = messages[lang] ? lang : "zh";
    localStorage.setItem("kiosq.lang", K.lang);
    K.applyLang();
    document.dispatchEvent(new CustomEvent("kiosq:lang"));
  };

  K.toggleLang = function () { K.setLang(K.lang === "zh" ? "en" : "zh"); };

  /* The name of a service or window in the current language. */
  K.name = function (thing) {
    if (!thing) return "";
    if (K.lang === "en") return thing.name_en || thing.service_name_en || thing.name || thing.service_name || "";
    return thing.name || thing.service_name || "";
  };

  /* JSON API call. Errors carry the server's {"error", "detail"} as .code and .message
     (and a 429's Retry-After, in seconds, as .retryAfter). The staff pages send no token:
     the browser sends the session cookie (same origin). `opts.token` is for scripts. */
  K.api = async function (path, options) {
    const opts = options || {};
    const headers = { Accept: "application/json" };
    if (opts.token) headers.Authorization = "Bearer " + opts.token;
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method: opts.method || "GET", headers,
                                     body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    } catch (err) {
      const e = new Error(K.t("error.network")); e.code = "network"; throw e;
    }
    const type = response.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const e = new Error((data && data.detail) || ("HTTP " + response.status));
      e.code = (data && data.error) || String(response.status); e.status = response.status;
      if (response.headers.get("Retry-After")) e.retryAfter = Number(response.headers.get("Retry-After"));
      throw e;
    }
    return data;
  };

  /* Signing in with a login and password (the staff console and /admin): the server sets
     the session cookie (HttpOnly: no script ever sees it). Each answers who is signed in:
     {login, name, role, windows, expires_at}. */
  K.session = {
    current: () => K.api("/api/session"),
    signIn: (login, password) => K.api("/api/session", { method: "POST", body: { login, password } }),
    signOut: () => K.api("/api/session", { method: "DELETE" }),
    /* The sign-in form's submit handler (#login, #password, #sign-in), the console's and
       /admin's alike: `enter(me)` once signed in, `say(text)` with the server's words. */
    form: (enter, say) => async function (e) {
      e.preventDefault();
      const $ = (id) => document.getElementById(id);
      const login = $("login").value.trim(), password = $("password").value;
      if (!login || !password) { say(K.t("signin.empty")); return; }
      $("sign-in").disabled = true;
      try {
        const me = await K.session.signIn(login, password);
        $("password").value = "";
        await enter(me);
      } catch (err) {
        say(err.message);  // wrong_login, disabled, too_many_tries: the server's words
        if (err.code === "wrong_login") $("password").select();
      } finally {
        $("sign-in").disabled = false;
      }
    },
  };

  /* "已登录：张敏（zhangmin）· 工作人员" */
  K.who = function (me) {
    return me ? K.t("signin.signed_in_as", { name: me.name, login: me.login, role: K.t("role." + me.role) }) : "";
  };

  /* The event stream at `url` (/api/events for the displays, /api/staff/events for the
     signed-in pages, /api/tickets/{id}/events for a phone), from `since` on (null: from
     now). EventSource reconnects by itself and sends Last-Event-ID, so the server replays
     what happened while the page was cut off (a server restart included); the staff
     stream sends the session cookie. onState(true|false) reports the connection; `types`
     (default K.eventTypes) are the event types to listen to. */
  K.stream = function (url, since, onEvent, onState, types) {
    const from = since === null || since === undefined ? "" : (url.includes("?") ? "&" : "?") + "since=" +
      encodeURIComponent(since);
    const source = new EventSource(url + from);
    for (const type of types || K.eventTypes) {
      source.addEventListener(type, (msg) => {
        let data;
        try { data = JSON.parse(msg.data); } catch (err) { console.error("bad event", msg.data); return; }
        onEvent(type, data, Number(msg.lastEventId));
      });
    }
    source.onopen = () => onState && onState(true);
    source.onerror = () => onState && onState(false);
    return source;
  };

  K.debounce = function (fn, ms) {
    let timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  };

  K.pad = (n) => String(n).padStart(2, "0");
  // The UTC offset, in minutes, that a server time such as "2026-12-03T02:05:00.000+08:00"
  // carries: the hall's own, whatever zone the display's machine is set to.
  K.offsetMinutes = function (iso) {
    const m = /([+-])(\d{2}):(\d{2})$/.exec(iso || "");
    return m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  };
  // HH:MM:SS of the moment `ms` (epoch milliseconds) on the hall's clock (`offsetMinutes`).
  K.clockText = function (ms, offsetMinutes) {
    const d = new Date(ms + offsetMinutes * 60000);
    return K.pad(d.getUTCHours()) + ":" + K.pad(d.getUTCMinutes()) + ":" + K.pad(d.getUTCSeconds());
  };
  K.elapsedText = function (ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    return K.pad(Math.floor(s / 60)) + ":" + K.pad(s % 60);
  };

  /* An element: attributes (`text` is its text), then its content: texts and nodes (null skipped). */
  K.el = function (tag, attrs, ...content) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    node.append(...content.filter((c) => c !== undefined && c !== null));
    return node;
  };

  window.Kiosq = K;
})();
