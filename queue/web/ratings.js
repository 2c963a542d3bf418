/* /admin's 好差评 card: this month's figures (GET /api/ratings/stats) and every 差评's case
   (GET /api/ratings/cases), the open ones first, each with its call-back and fix deadlines
   (warning at 80 % of the working days, overdue after), and the steps a supervisor records
   on it: the call-back, the fix, the decision on the window's appeal. Fetched at sign-in,
   every 30 s and after each step; stops at sign-out. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 30000;
  const state = { on: false, timer: null, stats: null, cases: null };
  window.KiosqRatings = state;

  K.addMessages({
    zh: {
      "ratings.title": "好差评",
      "ratings.month": "本月：评价 {n} 次，好评率 {good}，差评 {bad} 次，回访率 {called}，整改率 {fixed}，按时整改率 {ontime}",
      "ratings.none_month": "本月尚无评价",
      "ratings.alerts": "差评待办 {open} 件，临期 {warning} 件，超期 {overdue} 件",
      "ratings.no_cases": "没有差评",
      "rcol.label": "号码", "rcol.level": "评价", "rcol.why": "原因", "rcol.where": "窗口 / 人员",
      "rcol.callback": "回访期限", "rcol.fix": "整改期限", "rcol.state": "状态", "rcol.act": "处理",
      "rstate.open": "待处理", "rstate.fixed": "已整改", "rstate.appealed": "申诉中", "rstate.upheld": "申诉成立",
      "rdue.ok": "", "rdue.warning": "临期", "rdue.overdue": "超期",
      "ratings.note": "处理情况", "ratings.callback": "记录回访", "ratings.fix": "记录整改",
      "ratings.uphold": "申诉成立", "ratings.reject": "驳回申诉", "ratings.done_at": "{at} {by}",
      "ratings.appeal": "申诉：{reason}",
    },
    en: {
      "ratings.title": "Ratings",
      "ratings.month": "This month: {n} ratings, {good} good, {bad} bad, {called} called back, {fixed} fixed, {ontime} fixed on time",
      "ratings.none_month": "No ratings this month",
      "ratings.alerts": "Bad ratings to follow up: {open}, due soon {warning}, overdue {overdue}",
      "ratings.no_cases": "No bad ratings",
      "rcol.label": "Number", "rcol.level": "Rating", "rcol.why": "Why", "rcol.where": "Window / clerk",
      "rcol.callback": "Call back by", "rcol.fix": "Fix by", "rcol.state": "State", "rcol.act": "Follow up",
      "rstate.open": "open", "rstate.fixed": "fixed", "rstate.appealed": "appealed", "rstate.upheld": "appeal upheld",
      "rdue.ok": "", "rdue.warning": "due soon", "rdue.overdue": "overdue",
      "ratings.note": "What was done", "ratings.callback": "Called back", "ratings.fix": "Fixed",
      "ratings.uphold": "Uphold appeal", "ratings.reject": "Reject appeal", "ratings.done_at": "{at} {by}",
      "ratings.appeal": "Appeal: {reason}",
    },
  });

  const pct = (x) => (x === null || x === undefined ? "—" : (Math.round(x * 1000) / 10) + "%");
  const when = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "");
  const el = K.el;

  function due(cell, step) {
    cell.dataset.due = step.due_state || "done";
    cell.append(el("span", { text: step.due }));
    if (step.due_state && step.due_state !== "ok") cell.append(" ", el("b", { class: "due-" + step.due_state,
                                                                         text: K.t("rdue." + step.due_state) }));
    if (step.at) cell.append(el("br"), el("small", { text: K.t("ratings.done_at", { at: when(step.at), by: step.by || "" }) }));
    if (step.note) cell.append(el("br"), el("small", { text: step.note }));
  }

  function actions(c) {
    const cell = el("td", { "data-col": "act" });
    const closed = c.state === "fixed" || c.state === "upheld";
    if (closed) return cell;
    const note = el("input", { class: "case-note", placeholder: K.t("ratings.note"), maxlength: "500" });
    cell.append(note);
    const button = (key, step, body) => {
      const b = el("button", { class: "btn small", type: "button", "data-step": step, text: K.t(key) });
      b.addEventListener("click", () => act(c.id, step, { ...body, note: note.value.trim() || undefined }, b));
      cell.append(b);
    };
    if (c.state === "appealed") {
      cell.prepend(el("p", { class: "muted", text: K.t("ratings.appeal", { reason: c.appeal.reason || "" }) }));
      button("ratings.uphold", "decide", { uphold: true });
      button("ratings.reject", "decide", { uphold: false });
    } else {
      if (!c.callback.at) button("ratings.callback", "callback", {});
      button("ratings.fix", "fix", {});
    }
    return cell;
  }

  function render() {
    const s = state.stats;
    if (s) {
      const h = s.hall;
      $("ratings-month").textContent = h.ratings ? K.t("ratings.month", {
        n: h.ratings, good: pct(h.good_rate), bad: h.bad, called: pct(h.callback_rate), fixed: pct(h.fix_rate),
        ontime: pct(h.on_time_fix_rate) }) : K.t("ratings.none_month");
      $("ratings-month").dataset.ratings = String(h.ratings);
      $("ratings-month").dataset.fixRate = h.fix_rate === null ? "" : String(h.fix_rate);
    }
    const data = state.cases;
    if (!data) return;
    const alerts = $("ratings-alerts");
    alerts.textContent = K.t("ratings.alerts", data.counts);
    alerts.dataset.open = String(data.counts.open);
    alerts.dataset.warning = String(data.counts.warning);
    alerts.dataset.overdue = String(data.counts.overdue);
    alerts.classList.toggle("over", data.counts.overdue > 0);
    const table = $("ratings-table");
    const head = el("tr", {}, ...["label", "level", "why", "where", "callback", "fix", "state", "act"].map(
      (c) => el("th", { text: K.t("rcol." + c) })));
    const order = { appealed: 0, open: 1, fixed: 2, upheld: 3 };
    const rows = [...data.cases].sort((a, b) => order[a.state] - order[b.state] || a.id - b.id).map((c) => {
      const callback = el("td", { "data-col": "callback" }), fix = el("td", { "data-col": "fix" });
      due(callback, c.callback); due(fix, c.fix);
      return el("tr", { "data-case": String(c.id), "data-state": c.state },
        el("td", { "data-col": "label", text: c.label }),
        el("td", { "data-col": "level", text: c.level_name }),
        el("td", { "data-col": "why", text: [...c.reasons, c.comment || ""].filter(Boolean).join("；") }),
        el("td", { "data-col": "where", text: [c.window ? K.t("rate.window_short", { n: c.window }) : c.service,
                                               c.clerk || ""].filter(Boolean).join(" · ") }),
        callback, fix,
        el("td", { "data-col": "state", text: K.t("rstate." + c.state) }),
        actions(c));
    });
    table.replaceChildren(head, ...(rows.length ? rows : [el("tr", { class: "none" },
      el("td", { colspan: "8", text: K.t("ratings.no_cases") }))]));
  }

  async function act(id, step, body, button) {
    button.disabled = true;
    try {
      await K.api(`/api/ratings/cases/${id}/${step}`, { method: "POST", body });
      $("ratings-message").textContent = "";
      await load();
    } catch (err) {
      $("ratings-message").textContent = err.message;  // note_required, case_closed: the server's words
      button.disabled = false;
    }
  }

  async function load() {
    try {
      const [stats, cases] = await Promise.all([K.api("/api/ratings/stats"), K.api("/api/ratings/cases")]);
      state.stats = stats; state.cases = cases;
      $("ratings-card").classList.remove("hidden");
      render();
    } catch (err) {
      $("ratings-card").classList.add("hidden");  // not a supervisor or admin: not theirs
    }
  }

  function tick() {
    if (!state.on) return;
    load().finally(() => { if (state.on) state.timer = setTimeout(tick, REFRESH_MS); });
  }

  K.addMessages({ zh: { "rate.window_short": "{n}号窗" }, en: { "rate.window_short": "W{n}" } });
  document.addEventListener("kiosq:admin", (e) => {
    if (e.detail.what === "signed-out") {
      state.on = false;
      clearTimeout(state.timer);
      return;
    }
    if (e.detail.what !== "signed-in" || state.on) return;
    state.on = true;
    tick();
  });
  document.addEventListener("kiosq:lang", () => { K.applyLang(); render(); });
})();
