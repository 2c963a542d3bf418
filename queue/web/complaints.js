/* /admin's 效能投诉 card: every complaint (GET /api/complaints), the ones to act on first,
   with their deadlines (due today, overdue), the text and the masked phone, and what a
   supervisor does: accept, decline with a reason, answer, close with what the citizen said
   on the phone. Fetched at sign-in, every 30 s and after each action; stops at sign-out. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 30000;
  const state = { on: false, timer: null, data: null };
  window.KiosqComplaints = state;

  K.addMessages({
    zh: { "cps.title": "效能投诉", "cps.summary": "共 {n} 件，超期 {overdue} 件", "cps.none": "没有投诉",
          "ccol.no": "编号", "ccol.about": "对象", "ccol.what": "内容", "ccol.accept": "受理期限", "ccol.reply": "答复期限",
          "ccol.state": "状态", "ccol.act": "处理", "cps.text": "理由或答复", "cps.accept": "受理", "cps.decline": "不予受理",
          "cps.answer": "答复", "cps.close": "办结（满意度）",
          "cstate.received": "待受理", "cstate.accepted": "处理中", "cstate.declined": "不予受理", "cstate.answered": "已答复",
          "cstate.closed": "已办结", "cdue.due_today": "今日到期", "cdue.overdue": "超期", "cdue.ok": "" },
    en: { "cps.title": "Complaints", "cps.summary": "{n} in all, {overdue} overdue", "cps.none": "No complaints",
          "ccol.no": "Number", "ccol.about": "About", "ccol.what": "What", "ccol.accept": "Accept by", "ccol.reply": "Answer by",
          "ccol.state": "State", "ccol.act": "Handle", "cps.text": "Reason or answer", "cps.accept": "Accept", "cps.decline": "Decline",
          "cps.answer": "Answer", "cps.close": "Close (satisfaction)",
          "cstate.received": "to accept", "cstate.accepted": "being handled", "cstate.declined": "declined", "cstate.answered": "answered",
          "cstate.closed": "closed", "cdue.due_today": "due today", "cdue.overdue": "overdue", "cdue.ok": "" },
  });

  const el = K.el;

  function due(day, dueState) {
    const cell = el("td", { text: day });
    cell.dataset.due = dueState || "done";
    if (dueState && dueState !== "ok") cell.append(" ", el("b", { class: "due-" + dueState, text: K.t("cdue." + dueState) }));
    return cell;
  }

  function actions(c) {
    const cell = el("td", { "data-col": "act" });
    if (c.state === "declined" || c.state === "closed") return cell;
    const text = el("input", { class: "complaint-text", placeholder: K.t("cps.text"), maxlength: "1000" });
    const button = (key, action, body) => {
      const b = el("button", { class: "btn small", type: "button", "data-action": action, text: K.t(key) });
      b.addEventListener("click", () => act(c.complaint_no, action, body(text.value.trim()), b));
      cell.append(b);
    };
    if (c.state === "received") {
      cell.append(text);
      button("cps.accept", "accept", () => ({}));
      button("cps.decline", "decline", (t) => ({ text: t || undefined }));
    } else if (c.state === "accepted") {
      cell.append(text);
      button("cps.answer", "answer", (t) => ({ text: t || undefined }));
    } else if (c.state === "answered") {
      const pick = el("select", { class: "complaint-satisfaction" }, ...[5, 4, 3, 2, 1].map((n) => el("option", { value: String(n), text: String(n) })));
      cell.append(pick);
      button("cps.close", "close", () => ({ satisfaction: Number(pick.value) }));
    }
    return cell;
  }

  function render() {
    const d = state.data;
    if (!d) return;
    $("complaints-summary").textContent = K.t("cps.summary", { n: d.count, overdue: d.overdue });
    $("complaints-summary").dataset.overdue = String(d.overdue);
    const order = { received: 0, accepted: 1, answered: 2, declined: 3, closed: 4 };
    const rows = [...d.complaints].sort((a, b) => order[a.state] - order[b.state]).map((c) => el(
      "tr", { "data-complaint": c.complaint_no, "data-state": c.state },
      el("td", { text: c.complaint_no }),
      el("td", { text: [c.about.window ? K.t("rate.window_short", { n: c.about.window }) : "", c.about.staff_name || "",
                        K.lang === "en" ? c.category_name_en : c.category_name].filter(Boolean).join(" · ") }),
      el("td", { "data-col": "what", text: [c.text || "", c.phone || "", c.answer || c.decline_reason || ""]
        .filter(Boolean).join(" ｜ ") }),
      due(c.accept_by, c.accept_due), due(c.reply_by, c.reply_due),
      el("td", { "data-col": "state", text: K.t("cstate." + c.state) }),
      actions(c)));
    const head = el("tr", {}, ...["no", "about", "what", "accept", "reply", "state", "act"].map((k) => el("th", { text: K.t("ccol." + k) })));
    $("complaints-table").replaceChildren(head, ...(rows.length ? rows : [el("tr", { class: "none" },
      el("td", { colspan: "7", text: K.t("cps.none") }))]));
  }

  async function act(no, action, body, button) {
    button.disabled = true;
    try {
      await K.api(`/api/complaints/${encodeURIComponent(no)}/${action}`, { method: "POST", body });
      $("complaints-message").textContent = "";
      await load();
    } catch (err) {
      $("complaints-message").textContent = err.message;
      button.disabled = false;
    }
  }

  async function load() {
    try {
      state.data = await K.api("/api/complaints");
      $("complaints-card").classList.remove("hidden");
      render();
    } catch (err) {
      $("complaints-card").classList.add("hidden");
    }
  }

  function tick() {
    if (!state.on) return;
    load().finally(() => { if (state.on) state.timer = setTimeout(tick, REFRESH_MS); });
  }

  document.addEventListener("kiosq:admin", (e) => {
    if (e.detail.what === "signed-out") { state.on = false; clearTimeout(state.timer); return; }
    if (e.detail.what !== "signed-in" || state.on) return;
    state.on = true;
    tick();
  });
  document.addEventListener("kiosq:lang", () => { K.applyLang(); render(); });
})();
