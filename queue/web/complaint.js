/* 效能投诉 on a phone: /complain files a complaint (no token; the server limits how many
   come from one address), then shows its number, its 查询密码 and its deadlines;
   /c/{number}#code=… (or the code typed) shows its state, deadlines and the answer. The
   code is never stored by the page nor put in a query string. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const parts = location.pathname.split("/");
  const number = parts[1] === "c" ? decodeURIComponent(parts[2] || "") : null;
  const state = { categories: [], found: null, filed: null };
  window.KiosqComplaint = state;

  K.addMessages({
    zh: { "cp.title": "效能投诉", "cp.category": "投诉类别", "cp.window": "窗口号（可不填）",
          "cp.staff": "工作人员姓名或工号（可不填）", "cp.text": "请描述经过（至少5个字）",
          "cp.phone": "手机号（可不填，用于回复）", "cp.private": "您的手机号和投诉内容加密保存，只有负责处理的人员可见。",
          "cp.send": "提交投诉", "cp.number": "投诉编号", "cp.code": "请输入查询密码", "cp.look": "查询",
          "cp.filed": "已受理登记。投诉编号 {no}，查询密码 {code}（请记下）", "cp.dates": "{accept} 前决定是否受理，{reply} 前答复",
          "cp.state.received": "已收到，待受理", "cp.state.accepted": "已受理，正在处理", "cp.state.declined": "不予受理",
          "cp.state.answered": "已答复", "cp.state.closed": "已办结", "cp.reason": "不予受理的理由：{text}",
          "cp.answer": "答复：{text}", "cp.no_match": "编号或查询密码不对，请核对凭条", "cp.too_short": "请至少写5个字" },
    en: { "cp.title": "Complaint about staff", "cp.category": "What happened", "cp.window": "Window number (optional)",
          "cp.staff": "Staff name or number (optional)", "cp.text": "Please describe it (5 characters or more)",
          "cp.phone": "Mobile number (optional, for the reply)", "cp.private": "Your number and your complaint are kept encrypted; only those who handle it see them.",
          "cp.send": "Send", "cp.number": "Complaint number", "cp.code": "Type the lookup code", "cp.look": "Look up",
          "cp.filed": "Received. Complaint number {no}, lookup code {code} (write it down)", "cp.dates": "Accepted or declined by {accept}, answered by {reply}",
          "cp.state.received": "Received, to be accepted", "cp.state.accepted": "Accepted, being handled", "cp.state.declined": "Declined",
          "cp.state.answered": "Answered", "cp.state.closed": "Closed", "cp.reason": "Why it was declined: {text}",
          "cp.answer": "Answer: {text}", "cp.no_match": "The number or the code is wrong; check the slip", "cp.too_short": "Please write at least 5 characters" },
  });

  function render() {
    K.applyLang();
    const sel = $("cp-category");
    const chosen = sel.value;
    sel.replaceChildren(...state.categories.map((c) => {
      const o = document.createElement("option");
      o.value = c.code; o.textContent = K.lang === "en" ? c.name_en : c.name;
      return o;
    }));
    if (chosen) sel.value = chosen;
    if (number) $("cp-number").textContent = number;
    const c = state.found;
    $("cp-result").hidden = !c && !state.filed;
    const f = state.filed;
    $("cp-filed").textContent = f ? K.t("cp.filed", { no: f.complaint_no, code: f.lookup_code }) : "";
    const shown = c || f;
    if (!shown) return;
    $("cp-state").textContent = K.t("cp.state." + shown.state);
    $("cp-state").dataset.state = shown.state;
    $("cp-dates").textContent = K.t("cp.dates", { accept: shown.accept_by, reply: shown.reply_by });
    $("cp-reply").textContent = c && c.decline_reason ? K.t("cp.reason", { text: c.decline_reason })
      : c && c.answer ? K.t("cp.answer", { text: c.answer }) : "";
  }

  async function lookup(code) {
    $("cp-error").textContent = "";
    try {
      state.found = await K.api(`/api/complaints/${encodeURIComponent(number)}/lookup`, { method: "POST", body: { code } });
      $("cp-ask").hidden = true;
    } catch (err) {
      $("cp-error").textContent = err.code === "no_match" ? K.t("cp.no_match") : err.message;
    }
    render();
  }

  $("cp-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("cp-text").value.trim();
    if (text.length < 5) { $("cp-error").textContent = K.t("cp.too_short"); return; }
    const about = {};
    if ($("cp-window").value.trim()) about.window = Number($("cp-window").value.trim());
    if ($("cp-staff").value.trim()) about.staff_name = $("cp-staff").value.trim();
    const body = { about, category: $("cp-category").value, text };
    const phone = $("cp-phone").value.replace(/\D/g, "");
    if (phone) body.contact = { phone };
    $("cp-send").disabled = true;
    try {
      state.filed = await K.api("/api/complaints", { method: "POST", body });
      $("cp-form").hidden = true;
      $("cp-error").textContent = "";
      $("cp-text").value = ""; $("cp-phone").value = "";
    } catch (err) {
      $("cp-error").textContent = err.message;  // 429 per address, 422 with the field: the server's words
    } finally {
      $("cp-send").disabled = false;
    }
    render();
  });
  $("cp-ask").addEventListener("submit", (e) => {
    e.preventDefault();
    const code = $("cp-code").value.replace(/[\s-]/g, "").toUpperCase();
    if (code) lookup(code);
  });
  $("lang-toggle").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", render);

  (async function start() {
    try { state.categories = (await K.api("/api/complaints/categories")).categories; } catch (err) { /* shown below */ }
    if (number) {
      $("cp-ask").hidden = false;
      const code = new URLSearchParams(location.hash.replace(/^#/, "")).get("code");
      if (location.hash) history.replaceState(null, "", location.pathname + location.search);
      render();
      if (code) lookup(code.trim());
    } else {
      $("cp-form").hidden = false;
      render();
    }
  })();
})();
