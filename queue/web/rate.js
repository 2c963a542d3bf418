/* The window's rating device (评价器): a tablet at the counter, enrolled like a terminal.
   The moment its window finishes a ticket (ticket.finished on the public stream) it shows
   the five levels very large; a 差评 asks why (the hall's reasons, or typing); then thanks,
   and back to waiting. Nothing is kept of the citizen: the screen clears itself. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const windowNo = Number(location.pathname.split("/").pop());
  const params = new URLSearchParams(location.search);
  const ASK_SECONDS = Number(params.get("ask") || 60);  // no tap: back to waiting
  const THANKS_SECONDS = Number(params.get("thanks") || 6);
  const TOKEN = "kiosq.rate.token";
  const $ = (id) => document.getElementById(id);
  const state = { view: "idle", number: null, level: null, reasons: [], choices: null, sent: 0 };
  window.KiosqRate = state;
  let timer = null;

  K.addMessages({
    zh: { "rate.enroll_title": "登记评价器", "rate.enroll_help": "输入管理员在 /admin 生成的登记码（每个码只能用一次）。",
          "rate.enroll": "登记", "rate.idle": "欢迎评价我们的服务", "rate.idle_help": "本窗口办结后，请在此评价",
          "rate.ask": "请为本次服务评价", "rate.why": "请告诉我们哪里不满意（至少选一项或填写）",
          "rate.comment_masked": "请勿填写身份证号、手机号等个人信息。", "rate.send": "提交评价",
          "rate.thanks": "感谢您的评价！", "rate.follow": "我们将在 {date} 前回访，{fix} 前整改。",
          "rate.window": "{n} 号窗口", "rate.need_why": "请至少选择一项原因，或写下您的意见。" },
    en: { "rate.enroll_title": "Enroll this rating device", "rate.enroll_help": "Type the enrollment code the admin made on /admin (each code works once).",
          "rate.enroll": "Enroll", "rate.idle": "Please rate our service", "rate.idle_help": "When this window has finished, rate it here",
          "rate.ask": "How was your service?", "rate.why": "Please tell us what went wrong (pick one or type)",
          "rate.comment_masked": "Do not type ID card or phone numbers.", "rate.send": "Send",
          "rate.thanks": "Thank you for your rating!", "rate.follow": "We will call you back by {date} and fix it by {fix}.",
          "rate.window": "Window {n}", "rate.need_why": "Please pick a reason or write what went wrong." },
  });

  function show(view) {
    state.view = view;
    for (const name of ["enroll", "idle", "ask", "why", "thanks"]) $("rate-" + name).hidden = name !== view;
    document.body.dataset.view = view;
  }

  function later(seconds, then) {
    clearTimeout(timer);
    timer = setTimeout(then, seconds * 1000);
  }

  function idle() {
    clearTimeout(timer);
    state.number = null; state.level = null; state.reasons = [];
    $("rate-comment").value = "";
    $("rate-message").textContent = "";
    show("idle");
  }

  function render() {
    K.applyLang();
    $("rate-window").textContent = K.t("rate.window", { n: windowNo });
    $("rate-number").textContent = state.number || "";
    const choices = state.choices;
    if (!choices) return;
    $("rate-levels").replaceChildren(...choices.levels.map((lv) => {
      const b = document.createElement("button");
      b.type = "button"; b.className = "rate-level" + (lv.bad ? " bad" : "");
      b.dataset.level = String(lv.level);
      b.textContent = K.lang === "en" ? lv.name_en : lv.name;
      b.addEventListener("click", () => choose(lv));
      return b;
    }));
    $("rate-reasons").replaceChildren(...choices.reasons.map((r) => {
      const b = document.createElement("button");
      b.type = "button"; b.className = "rate-reason"; b.dataset.reason = r.zh;
      b.setAttribute("aria-pressed", String(state.reasons.includes(r.zh)));
      b.textContent = K.lang === "en" ? r.en : r.zh;
      b.addEventListener("click", () => {
        state.reasons = state.reasons.includes(r.zh) ? state.reasons.filter((x) => x !== r.zh) : [...state.reasons, r.zh];
        b.setAttribute("aria-pressed", String(state.reasons.includes(r.zh)));
        later(ASK_SECONDS, idle);
      });
      return b;
    }));
  }

  function choose(lv) {
    state.level = lv.level;
    if (lv.bad) { show("why"); later(ASK_SECONDS, idle); return; }
    send();
  }

  async function send() {
    const comment = $("rate-comment").value.trim();
    const bad = state.level <= 2;
    if (bad && !state.reasons.length && !comment) { $("rate-message").textContent = K.t("rate.need_why"); return; }
    $("rate-send").disabled = true;
    try {
      const body = { number: state.number, level: state.level, reasons: bad ? state.reasons : [] };
      if (bad && comment) body.comment = comment;
      const given = await K.api(`/api/windows/${windowNo}/rating`, { method: "POST", body, token: localStorage.getItem(TOKEN) });
      state.sent += 1;
      $("rate-follow").textContent = given.follow_up
        ? K.t("rate.follow", { date: given.follow_up.callback_due, fix: given.follow_up.fix_due }) : "";
      $("rate-comment").value = "";
      show("thanks");
      later(THANKS_SECONDS, idle);
    } catch (err) {
      if (err.status === 401) { localStorage.removeItem(TOKEN); show("enroll"); }
      $("rate-message").textContent = err.message;  // already_rated, too_late: the server's words
      if (err.status !== 401) later(THANKS_SECONDS, idle);
    } finally {
      $("rate-send").disabled = false;
    }
  }

  function onEvent(type, data) {
    if (type !== "ticket.finished" || data.window !== windowNo || !data.ticket) return;
    state.number = data.ticket.number; state.level = null; state.reasons = [];
    $("rate-comment").value = ""; $("rate-message").textContent = "";
    render();
    show("ask");
    later(ASK_SECONDS, idle);
  }

  async function run() {
    for (;;) {
      try {
        state.choices = await K.api("/api/ratings/reasons");
        const snap = await K.api("/api/display");
        render();
        idle();
        K.stream("/api/events", snap.last_event_id, onEvent, (ok) => { document.body.dataset.connected = String(ok); },
                 ["ticket.finished"]);
        return;
      } catch (err) {
        $("rate-message").textContent = err.message;
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  $("rate-enroll-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const done = await K.api("/api/terminals/enroll", { method: "POST", body: { code: $("rate-code").value.trim() } });
      localStorage.setItem(TOKEN, done.token);
      $("rate-code").value = "";
      run();
    } catch (err) {
      $("rate-message").textContent = err.message;
    }
  });
  $("rate-send").addEventListener("click", send);
  $("rate-lang").addEventListener("click", () => K.toggleLang());
  document.addEventListener("kiosq:lang", render);
  render();
  if (localStorage.getItem(TOKEN)) run(); else show("enroll");
})();
