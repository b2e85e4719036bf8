/* voicebot review page: supervisors audit what the bot said and keep its knowledge up to date.
 *
 * Conversations: GET /v1/review/conversations with the form's filters (newest first, "Older
 * conversations" follows next_cursor); a selected one from GET /v1/review/conversations/{id}, with
 * its recording (<audio>, which seeks with HTTP Range) and a right/wrong mark with a note on every
 * bot answer (POST /v1/review/turns/{id}/mark).
 * Knowledge gaps: GET /v1/review/gaps, the unanswered questions grouped by similarity; "Add answer"
 * opens the knowledge editor with the group's question.
 * Knowledge base (users who may edit it): GET/POST /v1/knowledge/passages, PATCH/DELETE .../{id},
 * POST .../{id}/approve|unapprove; an edit is used by the bot at once.
 * Every piece of data goes on the page as text (textContent), never as HTML. window.vbReview exposes
 * the page's state (used by the browser tests). Shared helpers: window.ui (ui.js). */
(function () {
  "use strict";
  var $ = ui.$, el = ui.el, show = ui.show, call = ui.call;
  var PAGE = 50;
  var STATUS = { active: "Open", handoff: "Handed off", resolved: "Resolved", ended: "Ended" };
  var CHANNELS = { chat: "Chat", voice: "Voice", email: "E-mail" };
  var ORIGINS = { console: "added here", override: "file, edited here", file: "file" };

  var state = window.vbReview = {
    tab: "conversations", conversations: [], cursor: null, selected: null, conversation: null,
    gaps: null, passages: [], languages: [], editing: null, canEdit: false, loads: 0, lastError: null
  };
  var syncLine = $(".ui-sync");
  var listRequest = 0, detailRequest = 0;

  function percent(value) { return value === null || value === undefined ? "–" : Math.round(value * 100) + " %"; }

  /* a date input's day as the start of that day in the browser's time zone, ISO (UTC) */
  function dayStart(value, plusDays) {
    if (!value) return null;
    var date = new Date(value + "T00:00:00");
    if (isNaN(date.getTime())) return null;
    date.setDate(date.getDate() + (plusDays || 0));
    return date.toISOString();
  }

  function fail(node, err) {
    state.lastError = err.message;
    node.textContent = err.message;
    show(node, true);
  }

  /* --- tabs ------------------------------------------------------------------------------------ */

  function selectTab(name) {
    state.tab = name;
    Array.prototype.forEach.call(document.querySelectorAll(".rv-tabs [role=tab]"), function (tab) {
      var on = tab.getAttribute("data-tab") === name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      show($("#" + tab.getAttribute("aria-controls")), on);
    });
    if (name === "gaps" && state.gaps === null) loadGaps();
  }

  /* --- conversations ---------------------------------------------------------------------------- */

  var filters = $("[data-testid=rv-filters]");
  var list = $("[data-testid=rv-list]");
  var more = $("[data-testid=rv-more]");

  function filterParams() {
    var form = new FormData(filters), params = new URLSearchParams();
    ["q", "channel", "handoff_reason", "intent", "marked"].forEach(function (name) {
      var value = String(form.get(name) || "").trim();
      if (value) params.set(name, value);
    });
    var outcome = form.get("outcome");
    if (outcome === "resolved") params.set("resolved", "true");
    else if (outcome) params.set("status", outcome);
    ["min_confidence", "max_confidence"].forEach(function (name) {
      var value = String(form.get(name) || "").trim();
      if (value !== "") params.set(name, String(Math.min(100, Math.max(0, Number(value))) / 100));
    });
    var since = dayStart(form.get("since")), until = dayStart(form.get("until"), 1);
    if (since) params.set("since", since);
    if (until) params.set("until", until);
    params.set("limit", String(PAGE));
    return params;
  }

  function loadConversations(append) {
    var params = filterParams();
    if (append && state.cursor) params.set("cursor", state.cursor);
    var mine = ++listRequest;
    show($("[data-testid=rv-list-error]"), false);
    return call("GET", "/v1/review/conversations?" + params.toString()).then(function (data) {
      if (mine !== listRequest) return;
      state.conversations = append ? state.conversations.concat(data.conversations) : data.conversations;
      state.cursor = data.next_cursor;
      state.loads += 1;
      renderConversations();
      ui.updated(syncLine, state.conversations.length + " conversations");
    }).catch(function (err) {
      if (mine !== listRequest) return;
      ui.notUpdated(syncLine, $("[data-testid=rv-list-error]"), err.message);
      state.lastError = err.message;
    });
  }

  function renderConversations() {
    list.textContent = "";
    state.conversations.forEach(function (c) {
      var button = ui.listItem(list, {
        className: "rv-item", idAttribute: "data-conversation", id: c.id, current: c.id === state.selected,
        nameClass: "rv-item-name", name: (CHANNELS[c.channel] || c.channel) + " · " + ui.when(c.created_at, true),
        badge: ui.badge(c.status, STATUS, "rv-status-"), onSelect: function () { openConversation(c.id); }
      });
      button.appendChild(el("span", "rv-item-line", c.first_question || "(no message)"));
      var facts = ["lowest confidence " + percent(c.lowest_confidence)];
      if (c.handoff_reason) facts.push("handoff: " + c.handoff_reason);
      if (c.marks.wrong) facts.push(c.marks.wrong + " marked wrong");
      if (c.marks.right) facts.push(c.marks.right + " marked right");
      button.appendChild(el("span", "rv-item-line", facts.join(" · ")));
    });
    show($("[data-testid=rv-empty]"), !state.conversations.length);
    show(more, Boolean(state.cursor));
  }

  function openConversation(id) {
    state.selected = id;
    ui.markCurrent(list, "data-conversation", id);
    var mine = ++detailRequest;
    show($("[data-testid=rv-detail-error]"), false);
    return call("GET", "/v1/review/conversations/" + encodeURIComponent(id)).then(function (data) {
      if (mine !== detailRequest) return;
      state.conversation = data;
      renderConversation(data);
    }).catch(function (err) {
      if (mine !== detailRequest) return;
      show($("[data-testid=rv-placeholder]"), false);
      show($("[data-testid=rv-detail]"), true);
      fail($("[data-testid=rv-detail-error]"), err);
    });
  }

  function renderConversation(c) {
    show($("[data-testid=rv-placeholder]"), false);
    show($("[data-testid=rv-detail]"), true);
    $("[data-testid=rv-title]").textContent = (CHANNELS[c.channel] || c.channel) + " conversation " + c.id;
    ui.badge(c.status, STATUS, "rv-status-", $("[data-testid=rv-status]"));
    var meta = [ui.when(c.created_at, true), (c.language || "?").toUpperCase()];
    if (c.caller) meta.push(c.caller);
    if (c.email) meta.push(c.email);
    if (c.resolved_without_human === true) meta.push("resolved by the bot");
    c.handoffs.forEach(function (h) { meta.push("handed off: " + h.reason + " (" + h.status + ")"); });
    if (c.csat) meta.push("CSAT " + c.csat + "/5");
    $("[data-testid=rv-meta]").textContent = meta.join(" · ");
    var audio = $("[data-testid=rv-audio]");
    if (c.recording_url) {
      if (audio.getAttribute("src") !== c.recording_url) audio.src = c.recording_url;
    } else {
      audio.removeAttribute("src");
    }
    show($("[data-testid=rv-recording]"), Boolean(c.recording_url));
    var turns = $("[data-testid=rv-turns]");
    turns.textContent = "";
    c.turns.forEach(function (turn) { turns.appendChild(renderTurn(turn)); });
  }

  function renderTurn(turn) {
    var item = el("li", "rv-turn rv-turn-" + turn.role);
    item.setAttribute("data-turn", String(turn.id));
    item.appendChild(el("span", "rv-turn-who", turn.role + " · " + ui.when(turn.created_at)));
    item.appendChild(el("p", "rv-turn-text", turn.text));
    if (turn.role !== "bot") return item;
    var facts = el("div", "rv-facts");
    facts.appendChild(el("span", "ui-badge", turn.action || "reply"));
    facts.appendChild(el("span", "ui-badge" + (turn.confidence !== null && turn.confidence < 0.55 ? " rv-low" : ""),
      "confidence " + percent(turn.confidence)));
    if (turn.intent) facts.appendChild(el("span", "ui-badge", "intent " + turn.intent));
    if (turn.reason) facts.appendChild(el("span", "ui-badge", turn.reason));
    if (turn.latency_ms !== null) facts.appendChild(el("span", "ui-badge", Math.round(turn.latency_ms) + " ms"));
    item.appendChild(facts);
    if (turn.citations && turn.citations.length) {
      var cites = el("ul", "rv-cites");
      turn.citations.forEach(function (cite) {
        cites.appendChild(el("li", null, cite.title + " — " + cite.source + " (" + percent(cite.score) + ")"));
      });
      item.appendChild(cites);
    }
    if (turn.marks.length) {
      var marks = el("ul", "rv-marks");
      marks.setAttribute("data-testid", "rv-marks");
      turn.marks.forEach(function (m) {
        var line = m.reviewer + ": " + m.verdict + (m.note ? " — " + m.note : "");
        marks.appendChild(el("li", "rv-mark-" + m.verdict, line));
      });
      item.appendChild(marks);
    }
    var form = el("div", "rv-mark-form");
    var note = el("input");
    note.type = "text";
    note.maxLength = 2000;
    note.placeholder = "Note (what was wrong, what the answer should be)";
    note.setAttribute("aria-label", "Note on this answer");
    note.setAttribute("data-testid", "rv-note");
    var right = el("button", "ui-button rv-right", "Right");
    var wrong = el("button", "ui-button rv-wrong", "Wrong");
    right.type = wrong.type = "button";
    right.setAttribute("data-testid", "rv-mark-right");
    wrong.setAttribute("data-testid", "rv-mark-wrong");
    var error = el("p", "ui-error");
    error.setAttribute("role", "alert");
    show(error, false);
    function markAs(verdict) {
      right.disabled = wrong.disabled = true;
      call("POST", "/v1/review/turns/" + turn.id + "/mark", { verdict: verdict, note: note.value })
        .then(function () { state.lastError = null; return openConversation(state.selected); })
        .then(function () { loadConversations(false); state.gaps = null; })
        .catch(function (err) { right.disabled = wrong.disabled = false; fail(error, err); });
    }
    right.addEventListener("click", function () { markAs("right"); });
    wrong.addEventListener("click", function () { markAs("wrong"); });
    form.appendChild(note);
    form.appendChild(right);
    form.appendChild(wrong);
    item.appendChild(form);
    item.appendChild(error);
    return item;
  }

  /* --- knowledge gaps -------------------------------------------------------------------------- */

  var gapForm = $("[data-testid=rv-gap-form]");
  var groups = $("[data-testid=rv-groups]");

  function loadGaps() {
    var form = new FormData(gapForm), params = new URLSearchParams();
    var since = dayStart(form.get("since")), until = dayStart(form.get("until"), 1);
    if (since) params.set("since", since);
    if (until) params.set("until", until);
    show($("[data-testid=rv-gap-error]"), false);
    return call("GET", "/v1/review/gaps?" + params.toString()).then(function (data) {
      state.gaps = data;
      renderGaps(data);
    }).catch(function (err) { fail($("[data-testid=rv-gap-error]"), err); });
  }

  function renderGaps(data) {
    groups.textContent = "";
    var summary = data.questions + " unanswered questions in " + data.groups.length + " groups, " +
      ui.when(data.since, true) + " – " + ui.when(data.until, true);
    $("[data-testid=rv-gap-summary]").textContent = data.note ? summary + ". " + data.note : summary;
    data.groups.forEach(function (g) {
      var item = el("li", "ui-box rv-group");
      item.setAttribute("data-testid", "rv-group");
      var head = el("div", "ui-detail-head");
      head.appendChild(el("h3", null, g.representative));
      head.appendChild(el("span", "ui-badge", g.count + (g.count === 1 ? " time" : " times")));
      var answered = el("span", "ui-badge " + (g.answered_now ? "rv-answered" : "rv-open"),
        g.answered_now ? "answered now" : "no answer yet");
      answered.setAttribute("data-testid", "rv-group-state");
      head.appendChild(answered);
      item.appendChild(head);
      var facts = [g.languages.join(", ").toUpperCase() || "language unknown", "last asked " + ui.when(g.last_seen, true)];
      Object.keys(g.reasons).forEach(function (r) { facts.push(r.replace(/_/g, " ") + " " + g.reasons[r]); });
      item.appendChild(el("p", "ui-muted", facts.join(" · ")));
      var examples = el("ul");
      g.examples.forEach(function (text) { examples.appendChild(el("li", null, text)); });
      item.appendChild(examples);
      if (g.notes.length) item.appendChild(el("p", "ui-muted", "Reviewers' notes: " + g.notes.join(" | ")));
      var row = el("div", "rv-row");
      g.conversation_ids.slice(0, 5).forEach(function (id) {
        var link = el("button", "rv-link", "conversation " + id.slice(0, 8));
        link.type = "button";
        link.addEventListener("click", function () { selectTab("conversations"); openConversation(id); });
        row.appendChild(link);
      });
      if (state.canEdit) {
        var add = el("button", "ui-button ui-primary", "Add answer");
        add.type = "button";
        add.setAttribute("data-testid", "rv-add-answer");
        add.addEventListener("click", function () {
          selectTab("knowledge");
          newPassage({ questions: g.examples, language: g.languages[0] });
        });
        row.appendChild(add);
      }
      item.appendChild(row);
      groups.appendChild(item);
    });
    show($("[data-testid=rv-gap-empty]"), !data.groups.length);
  }

  /* --- knowledge base ------------------------------------------------------------------------- */

  var kbFilters = $("[data-testid=rv-kb-filters]");
  var kbList = $("[data-testid=rv-kb-list]");
  var editor = $("[data-testid=rv-kb-editor]");
  var toggle = $("[data-testid=rv-kb-toggle]");
  var remove = $("[data-testid=rv-kb-delete]");
  var kbConfirm = $("[data-testid=rv-kb-confirm]");
  var kbError = $("[data-testid=rv-kb-error]");

  function loadPassages() {
    var form = new FormData(kbFilters), params = new URLSearchParams({ limit: "300" });
    ["q", "origin", "approved"].forEach(function (name) {
      var value = String(form.get(name) || "").trim();
      if (value) params.set(name, value);
    });
    show($("[data-testid=rv-kb-list-error]"), false);
    return call("GET", "/v1/knowledge/passages?" + params.toString()).then(function (data) {
      state.passages = data.passages;
      if (!state.languages.length) setLanguages(data.languages);
      renderPassages();
    }).catch(function (err) { fail($("[data-testid=rv-kb-list-error]"), err); });
  }

  function setLanguages(languages) {
    state.languages = languages;
    var select = editor.elements.language;
    select.textContent = "";
    languages.forEach(function (code) {
      var option = el("option", null, code.toUpperCase());
      option.value = code;
      select.appendChild(option);
    });
  }

  function renderPassages() {
    kbList.textContent = "";
    state.passages.forEach(function (p) {
      var button = ui.listItem(kbList, {
        className: "rv-item", idAttribute: "data-passage", id: p.id, current: state.editing && state.editing.id === p.id,
        nameClass: "rv-item-name", name: p.title,
        badge: ui.badge(p.approved ? "approved" : "draft", { approved: "Approved", draft: "Draft" }, "rv-kb-"),
        onSelect: function () { editPassage(p); }
      });
      button.appendChild(el("span", "rv-item-line", (p.language || "").toUpperCase() + " · " + ORIGINS[p.origin] +
        " · " + p.source));
    });
    show($("[data-testid=rv-kb-empty]"), !state.passages.length);
  }

  function fillEditor(p) {
    var f = editor.elements;
    f.questions.value = (p.questions || []).join("\n");
    f.title.value = p.title || "";
    f.text.value = p.text || "";
    if (p.language && state.languages.indexOf(p.language) >= 0) f.language.value = p.language;
    f.tags.value = (p.tags || []).join(", ");
    f.approved.checked = p.approved !== false;
    show(kbConfirm, false);
    show(kbError, false);
  }

  function newPassage(prefill) {
    state.editing = null;
    ui.markCurrent(kbList, "data-passage", "");
    $("[data-testid=rv-kb-editor-title]").textContent = "New answer";
    $("[data-testid=rv-kb-source]").textContent = "Added here: the bot uses it as soon as it is saved.";
    fillEditor(prefill || {});
    show(toggle, false);
    show(remove, false);
    (prefill && prefill.questions ? editor.elements.text : editor.elements.questions).focus();
  }

  function editPassage(p) {
    state.editing = p;
    ui.markCurrent(kbList, "data-passage", p.id);
    $("[data-testid=rv-kb-editor-title]").textContent = "Edit: " + p.title;
    var where = p.origin === "file" ? "From the file " + p.source + ": saving keeps your version over the file's."
      : p.origin === "override" ? "Edited here over the file " + p.source.slice(8) + "." : "Added here (" + p.source + ").";
    $("[data-testid=rv-kb-source]").textContent = where;
    fillEditor(p);
    toggle.textContent = p.approved ? "Unapprove" : "Approve";
    show(toggle, true);
    remove.textContent = p.origin === "override" ? "Restore the file's version" : "Delete";
    show(remove, p.origin !== "file");
  }

  function lines(value) { return String(value || "").split("\n").map(function (s) { return s.trim(); }).filter(Boolean); }

  function afterChange(passage, message) {
    kbConfirm.textContent = message;
    show(kbConfirm, true);
    state.lastError = null;
    state.gaps = null;
    return loadPassages().then(function () {
      var fresh = passage && state.passages.filter(function (p) { return p.id === passage.id; })[0];
      if (fresh) editPassage(fresh);
      show(kbConfirm, true);
    });
  }

  function kbAction(request, message) {
    show(kbError, false);
    show(kbConfirm, false);
    return request.then(function (passage) { return afterChange(passage, message); })
      .catch(function (err) { fail(kbError, err); });
  }

  editor.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = editor.elements;
    var body = {
      questions: lines(f.questions.value), text: f.text.value, language: f.language.value || null,
      tags: String(f.tags.value).split(",").map(function (s) { return s.trim(); }).filter(Boolean),
      approved: f.approved.checked
    };
    if (f.title.value.trim()) body.title = f.title.value.trim();
    var editing = state.editing;
    kbAction(editing ? call("PATCH", "/v1/knowledge/passages/" + encodeURIComponent(editing.id), body)
      : call("POST", "/v1/knowledge/passages", body), "Saved. The bot answers from it now.");
  });
  toggle.addEventListener("click", function () {
    var p = state.editing;
    if (!p) return;
    kbAction(call("POST", "/v1/knowledge/passages/" + encodeURIComponent(p.id) + (p.approved ? "/unapprove" : "/approve")),
      p.approved ? "Unapproved: the bot no longer uses it." : "Approved: the bot uses it now.");
  });
  remove.addEventListener("click", function () {
    var p = state.editing;
    if (!p || !window.confirm(p.origin === "override" ? "Restore the file's version?" : "Delete this answer?")) return;
    kbAction(call("DELETE", "/v1/knowledge/passages/" + encodeURIComponent(p.id)).then(function () {
      newPassage();
      return null;
    }), p.origin === "override" ? "The file's version is back." : "Deleted.");
  });

  /* --- start ------------------------------------------------------------------------------------ */

  ui.consoleNav("review", "review").then(function (me) {
    state.canEdit = (me.user.permissions || []).indexOf("knowledge") >= 0;
    show($("[data-testid=rv-tab-knowledge]"), state.canEdit);
    Array.prototype.forEach.call(document.querySelectorAll(".rv-tabs [role=tab]"), function (tab) {
      tab.addEventListener("click", function () { selectTab(tab.getAttribute("data-tab")); });
    });
    filters.addEventListener("submit", function (event) { event.preventDefault(); loadConversations(false); });
    filters.addEventListener("reset", function () { setTimeout(function () { loadConversations(false); }, 0); });
    more.addEventListener("click", function () { loadConversations(true); });
    gapForm.addEventListener("submit", function (event) { event.preventDefault(); loadGaps(); });
    kbFilters.addEventListener("submit", function (event) { event.preventDefault(); loadPassages(); });
    $("[data-testid=rv-kb-new]").addEventListener("click", function () { newPassage(); });
    loadConversations(false);
    if (state.canEdit) loadPassages();  // the editor's languages, before "Add answer" needs them
  }).catch(function () { /* not allowed: consoleNav shows why */ });
})();
