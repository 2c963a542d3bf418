/* The applications panel of the staff console (/window/{n}): the applications of the
   window's items, filtered by state and deadline, with the actions their state allows.
   A rejection is only asked for here; a supervisor (or admin) approves or denies it
   (窗口无否决权), and only they see those buttons (the server refuses anyway). Requests go
   with the console's session cookie; a 401 sends the console back to its sign-in form.
   Lists come masked from the server; the full record is fetched only on an explicit click,
   kept in the page alone (never in any storage) and dropped on hide, sign-out or after
   two minutes. Live: application events reload the list. */
(function () {
  "use strict";
  const K = window.Kiosq;
  const $ = (id) => document.getElementById(id);
  const number = Number(location.pathname.split("/").pop());
  const OPEN = "submitted,accepted,in_review,returned";
  // As queue/applications.py: action -> the statuses it may start from.
  const MOVES = {
    accept: ["submitted", "returned"], review: ["accepted"], complete: ["accepted", "in_review"],
    return: ["submitted", "accepted", "in_review"], reject: ["submitted", "accepted", "in_review"],
  };
  const NEEDS_NOTE = ["return", "reject"];
  const DECIDERS = ["supervisor", "admin"];
  const PERSONAL_MS = 120000;
  const state = { me: null, services: [], list: [], today: "", noting: null,
                  seq: 0, personal: null, personalTimer: null, forms: new Map() };
  window.KiosqApplications = state;

  function say(text, isError) {
    const m = $("app-message");
    m.textContent = text;
    m.className = isError ? "error" : "ok";
  }

  function query() {
    const status = $("app-status").value, due = $("app-due").value;
    const params = new URLSearchParams({ window: String(number) });
    if (status === "open" || status === "pending") params.set("status", OPEN);
    else if (status !== "all") params.set("status", status);
    if (due) params.set("due", due);
    return "/api/applications?" + params;
  }

  async function load() {
    if (!state.me) return;
    const seq = ++state.seq;
    try {
      const data = await K.api(query());
      if (seq !== state.seq || !state.me) return; // a newer load is under way, or signed out
      const pendingOnly = $("app-status").value === "pending";
      state.list = data.applications.filter((a) => !pendingOnly || a.rejection_pending);
      state.today = data.today;
      render();
    } catch (err) {
      if (err.status === 401) signedOut(err.message);
      else if (seq === state.seq) say(err.message, true);
    }
  }
  const loadSoon = K.debounce(load, 100);

  // The session ended under us: the console shows its sign-in form with the server's words.
  function signedOut(message) {
    if (window.KiosqConsole && window.KiosqConsole.signedOut) window.KiosqConsole.signedOut(message);
  }

  // -- the list ------------------------------------------------------------------------

  function deadline(a) {
    const cell = K.el("td", { class: "promised" });
    cell.append(K.el("span", null, a.promised_date));
    let text = "";
    const left = a.workdays_left;
    if (a.due === "over") text = left < 0 ? K.t("apps.days_over", { days: -left }) : K.t("apps.overdue");
    else if (left === 0) text = K.t("apps.due_today");
    else if (left !== null && left !== undefined) text = K.t("apps.days_left", { days: left });
    if (text) cell.append(K.el("br"), K.el("small", { class: "days-left" }, text));
    if (a.due === "near" || a.due === "over") {
      cell.append(" ", K.el("span", { class: "badge due-" + a.due, "data-due": a.due },
                            K.t(a.due === "over" ? "apps.overdue" : "apps.near")));
    }
    return cell;
  }

  function button(a, action, kind) {
    const b = K.el("button", { type: "button", class: "btn small " + (kind || ""), "data-app-action": action,
                               "data-no": a.tracking_no }, K.t("apps." + action));
    b.addEventListener("click", () => {
      if (action === "personal") showPersonal(a.tracking_no, a.item);
      else if (NEEDS_NOTE.includes(action)) openNote(a.tracking_no, action);
      else act(a.tracking_no, action);
    });
    return b;
  }

  function actions(a) {
    const cell = K.el("div", { class: "row-actions" });
    if (a.rejection_pending) {
      if (DECIDERS.includes(state.me.role)) {
        cell.append(button(a, "approve_rejection", "danger"), button(a, "deny_rejection", "secondary"));
      }
    } else {
      for (const [action, from] of Object.entries(MOVES)) {
        if (from.includes(a.status)) {
          cell.append(button(a, action, action === "reject" ? "danger" : NEEDS_NOTE.includes(action) ? "secondary" : ""));
        }
      }
    }
    cell.append(button(a, "personal", "secondary"));
    const td = K.el("td");
    td.append(cell);
    return td;
  }

  function status(a) {
    const cell = K.el("td", { class: "status" });
    cell.append(K.el("span", { class: "tag app-status", "data-status": a.status }, K.t("appstatus." + a.status)));
    const pending = a.rejection_pending;
    if (pending) {
      cell.append(" ", K.el("span", { class: "tag pending", title: pending.note }, K.t("apps.pending_tag")),
                  K.el("br"), K.el("small", { class: "pending-note" }, pending.by + "：" + pending.note));
    }
    return cell;
  }

  function row(a) {
    const tr = K.el("tr", { "data-no": a.tracking_no, "data-status": a.status, "data-due": a.due || "" });
    const item = K.el("td");
    item.append(K.el("span", null, a.item_name), K.el("br"), K.el("small", null, a.item));
    const who = K.el("td");
    who.append(K.el("span", null, a.applicant.name), K.el("br"), K.el("small", null, a.applicant.id_number));
    tr.append(K.el("td", { class: "no" }, a.tracking_no), item, who,
              K.el("td", null, (a.submitted_at || "").slice(0, 16).replace("T", " ")), deadline(a), status(a), actions(a));
    return tr;
  }

  function noteRow(no, action) {
    const tr = K.el("tr", { class: "note-row", "data-note-for": no });
    const td = K.el("td", { colspan: "7" });
    const form = K.el("form", { class: "actions note-form" });
    const label = K.el("label", { for: "app-note" }, K.t(action === "return" ? "apps.note_return" : "apps.note_reject"));
    const input = K.el("input", { id: "app-note", maxlength: "500", autocomplete: "off" });
    input.value = state.noting.text;
    input.addEventListener("input", () => { state.noting.text = input.value; });
    const ok = K.el("button", { type: "submit", class: "btn small", id: "app-note-ok" }, K.t("apps.confirm"));
    const cancel = K.el("button", { type: "button", class: "btn small secondary", id: "app-note-cancel" }, K.t("apps.cancel"));
    cancel.addEventListener("click", closeNote);
    form.addEventListener("submit", (e) => { e.preventDefault(); act(no, action, state.noting.text); });
    form.append(label, input, ok, cancel);
    td.append(form, K.el("p", { class: "muted", id: "app-note-masked" }, K.t("apps.note_masked")));
    tr.append(td);
    return tr;
  }

  function render(force) {
    if (!state.me) return;
    // A note is being written: keep its row (and the focus); redraw once it is closed.
    if (state.noting && force !== true) return;
    const head = K.el("tr");
    for (const key of ["apps.no", "apps.item", "apps.applicant", "apps.submitted", "apps.promised", "apps.status",
                       "apps.actions"]) head.append(K.el("th", null, K.t(key)));
    const rows = [];
    for (const a of state.list) {
      rows.push(row(a));
      if (state.noting && state.noting.no === a.tracking_no) rows.push(noteRow(a.tracking_no, state.noting.action));
    }
    if (!state.list.length) {
      const none = K.el("tr", { class: "none" });
      none.append(K.el("td", { colspan: "7" }, K.t("apps.none")));
      rows.push(none);
    }
    $("applications").replaceChildren(head, ...rows);
    $("app-count").textContent = K.t("apps.count", { count: state.list.length });
  }

  function openNote(no, action) {
    state.noting = { no, action, text: "" };
    render(true);
    $("app-note").focus();
  }

  function closeNote() {
    state.noting = null;
    render();
  }

  // -- actions -------------------------------------------------------------------------

  async function act(no, action, note) {
    const path = "/api/applications/" + encodeURIComponent(no) + "/" + action.replace("_", "-");
    try {
      const body = NEEDS_NOTE.includes(action) || note ? { note: note || "" } : undefined;
      const app = await K.api(path, { method: "POST", body });
      say(action === "reject" ? K.t("apps.requested", { no })
                              : K.t("apps.done", { no, status: K.t("appstatus." + app.status) }), false);
      if (state.noting && state.noting.no === no) state.noting = null;
      render();
    } catch (err) {
      if (err.status === 401) { signedOut(err.message); return; }
      say(err.message, true);
    }
    load();
  }

  // -- the full record, on request only --------------------------------------------------

  async function formOf(item) {
    if (!state.forms.has(item)) {
      try {
        const guide = await K.api("/api/items/" + encodeURIComponent(item));
        state.forms.set(item, new Map(((guide.form && guide.form.fields) || []).map((f) => [f.name, f])));
      } catch (err) {
        return new Map();
      }
    }
    return state.forms.get(item);
  }

  async function showPersonal(no, item) {
    try {
      const [record, fields] = await Promise.all([
        K.api("/api/applications/" + encodeURIComponent(no) + "/personal"), formOf(item)]);
      const panel = $("app-personal");
      const list = K.el("dl");
      const who = record.applicant;
      for (const key of ["name", "id_number", "phone", "address", "source"]) {
        if (who[key]) list.append(K.el("dt", null, K.t("apps." + key)), K.el("dd", { "data-field": key }, String(who[key])));
      }
      const values = K.el("dl");
      for (const [name, value] of Object.entries(record.values || {})) {
        const field = fields.get(name);
        const label = field ? (K.lang === "en" ? field.label_en : field.label) : name;
        values.append(K.el("dt", null, label), K.el("dd", null, typeof value === "boolean" ? (value ? "✓" : "✗") : String(value)));
      }
      const hide = K.el("button", { type: "button", class: "btn small secondary", id: "app-personal-hide" },
                        K.t("apps.hide_personal"));
      hide.addEventListener("click", hidePersonal);
      panel.replaceChildren(K.el("h3", null, K.t("apps.personal_title") + " · " + record.tracking_no),
                            K.el("p", { class: "muted" }, K.t("apps.personal_note")), list,
                            K.el("h3", null, K.t("apps.values")), values, hide);
      panel.dataset.no = record.tracking_no;
      panel.classList.remove("hidden");
      clearTimeout(state.personalTimer);
      state.personalTimer = setTimeout(hidePersonal, PERSONAL_MS);
    } catch (err) {
      if (err.status === 401) signedOut(err.message);
      else say(err.message, true);
    }
  }

  function hidePersonal() {
    clearTimeout(state.personalTimer);
    const panel = $("app-personal");
    panel.replaceChildren();
    delete panel.dataset.no;
    panel.classList.add("hidden");
  }

  // -- wiring ----------------------------------------------------------------------------

  document.addEventListener("kiosq:console", (e) => {
    const { what, data } = e.detail;
    if (what === "signed-in") {
      Object.assign(state, { me: data.me, services: data.window.services });
      document.body.dataset.role = data.me.role;
      load();
    } else if (what === "signed-out") {
      Object.assign(state, { me: null, list: [], noting: null });
      state.seq++;
      delete document.body.dataset.role;
      hidePersonal();
      $("applications").replaceChildren();
      $("app-message").textContent = "";
    } else if (what === "application" && data.application && state.services.includes(data.application.service)) {
      loadSoon();
    }
  });
  $("app-status").addEventListener("change", load);
  $("app-due").addEventListener("change", load);
  document.addEventListener("kiosq:lang", () => render(true));
})();
