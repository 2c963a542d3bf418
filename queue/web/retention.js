/* /admin's retention line (保存期限): the hall's [retention] settings, the last daily run
   (when, how many applications' personal data it erased, how many events it deleted) and the
   next run, from GET /api/retention. Fetched at sign-in and every minute; stops at sign-out. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 60000;
  const state = { on: false, timer: null, report: null };
  window.KiosqRetention = state;

  K.addMessages({
    zh: {
      "retention.title": "保存期限",
      "retention.settings": "申报件办结 {personal} 天后删除个人信息；事件记录保存 {events} 天",
      "retention.last": "上次清理：{at}，删除 {apps} 件申报的个人信息、{events} 条事件记录",
      "retention.running": "正在清理（{at} 开始）",
      "retention.never": "尚未清理过",
      "retention.next": "下次清理：{at}",
    },
    en: {
      "retention.title": "Retention",
      "retention.settings": "Personal data erased {personal} days after an application is closed; events kept {events} days",
      "retention.last": "Last run: {at}, personal data of {apps} application(s) erased, {events} event(s) deleted",
      "retention.running": "Running (since {at})",
      "retention.never": "Not run yet",
      "retention.next": "Next run: {at}",
    },
  });

  const when = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "—");

  function render() {
    const r = state.report;
    if (!r) return;
    $("retention-settings").textContent = K.t("retention.settings", { personal: r.personal_days, events: r.events_days });
    const last = r.last_run;
    const line = $("retention-last");
    if (!last) line.textContent = K.t("retention.never");
    else if (last.state !== "done") line.textContent = K.t("retention.running", { at: when(last.started_at) });
    else line.textContent = K.t("retention.last", { at: when(last.finished_at), apps: last.applications_erased,
                                                    events: last.events_deleted });
    line.dataset.erased = last && last.state === "done" ? String(last.applications_erased) : "";
    line.dataset.deleted = last && last.state === "done" ? String(last.events_deleted) : "";
    $("retention-next").textContent = K.t("retention.next", { at: when(r.next_run) });
  }

  async function load() {
    try {
      state.report = await K.api("/api/retention");
      $("retention-card").classList.remove("hidden");
      render();
    } catch (err) {
      $("retention-card").classList.add("hidden");  // not an admin: the section is not theirs
    }
  }

  function tick() {
    if (!state.on) return;
    load().finally(() => { if (state.on) state.timer = setTimeout(tick, REFRESH_MS); });
  }

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
