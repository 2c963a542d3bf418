/* The citizen's 好差评 form on a phone, shared by the follow page (/t/{id}, once the ticket
   is finished) and an application's page (/a/{no}, once it is completed or rejected):
   five levels, and for a 差评 the hall's reasons or typing; `send(body)` posts it. Never
   in the way: the page works the same when nobody rates. */
(function () {
  "use strict";
  const K = window.Kiosq;

  K.addMessages({
    zh: { "rf.ask": "请为本次服务评价", "rf.why": "哪里不满意？（选一项或填写）", "rf.send": "提交评价",
          "rf.thanks": "感谢您的评价！", "rf.follow": "我们将在 {date} 前回访，{fix} 前整改。",
          "rf.need_why": "请至少选择一项原因，或写下您的意见。", "rf.rated": "您已评价：{level}",
          "rf.comment": "请勿填写身份证号、手机号等个人信息" },
    en: { "rf.ask": "How was your service?", "rf.why": "What went wrong? (pick one or type)", "rf.send": "Send",
          "rf.thanks": "Thank you for your rating!", "rf.follow": "We will call you back by {date} and fix it by {fix}.",
          "rf.need_why": "Please pick a reason or write what went wrong.", "rf.rated": "You rated: {level}",
          "rf.comment": "Do not type ID card or phone numbers" },
  });

  const el = K.el;

  /* Fills `root` with the form. `choices`: GET /api/ratings/reasons; `rated`: a rating
     given already (shown instead); `send(body)`: a promise of the answer. */
  K.rateForm = function (root, choices, rated, send) {
    const form = { level: null, reasons: [], done: !!rated, given: rated };
    root.dataset.rated = String(!!rated);
    const levelName = (lv) => (K.lang === "en" ? lv.name_en : lv.name);

    function draw() {
      root.replaceChildren();
      if (form.done) {
        const g = form.given;
        root.append(el("p", { class: "rf-thanks", text: form.thanked ? K.t("rf.thanks") : K.t("rf.rated", {
          level: K.lang === "en" ? g.level_name_en : g.level_name }) }));
        if (form.thanked && g.follow_up) {
          root.append(el("p", { class: "muted rf-follow", text: K.t("rf.follow", { date: g.follow_up.callback_due,
                                                                                  fix: g.follow_up.fix_due }) }));
        }
        return;
      }
      root.append(el("p", { class: "rf-ask", text: K.t("rf.ask") }));
      const levels = el("div", { class: "rf-levels" });
      for (const lv of choices.levels) {
        const b = el("button", { type: "button", class: "rf-level" + (lv.bad ? " bad" : ""), "data-level": String(lv.level),
                                 "aria-pressed": String(form.level === lv.level), text: levelName(lv) });
        b.addEventListener("click", () => { form.level = lv.level; if (lv.bad) draw(); else submit(); });
        levels.append(b);
      }
      root.append(levels);
      if (form.level !== null && form.level <= 2) {
        root.append(el("p", { text: K.t("rf.why") }));
        const reasons = el("div", { class: "rf-reasons" });
        for (const r of choices.reasons) {
          const b = el("button", { type: "button", class: "rf-reason", "data-reason": r.zh,
                                   "aria-pressed": String(form.reasons.includes(r.zh)), text: K.lang === "en" ? r.en : r.zh });
          b.addEventListener("click", () => {
            form.reasons = form.reasons.includes(r.zh) ? form.reasons.filter((x) => x !== r.zh) : [...form.reasons, r.zh];
            b.setAttribute("aria-pressed", String(form.reasons.includes(r.zh)));
          });
          reasons.append(b);
        }
        const comment = el("textarea", { class: "rf-comment", maxlength: "500", rows: "2", placeholder: K.t("rf.comment") });
        const go = el("button", { type: "button", class: "rf-send", text: K.t("rf.send") });
        go.addEventListener("click", () => submit(comment.value.trim()));
        root.append(reasons, comment, go);
      }
      root.append(el("p", { class: "rf-message", role: "status" }));
    }

    async function submit(comment) {
      const bad = form.level <= 2;
      const say = (text) => { const m = root.querySelector(".rf-message"); if (m) m.textContent = text; };
      if (bad && !form.reasons.length && !comment) { say(K.t("rf.need_why")); return; }
      const body = { level: form.level, reasons: bad ? form.reasons : [] };
      if (bad && comment) body.comment = comment;
      try {
        form.given = await send(body);
        form.done = true; form.thanked = true;
        root.dataset.rated = "true";
        draw();
      } catch (err) {
        say(err.message);  // already_rated, too_late: the server's words
      }
    }

    draw();
    document.addEventListener("kiosq:lang", draw);
    return form;
  };
})();
