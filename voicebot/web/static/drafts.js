/* voicebot e-mail drafts page: agents review the replies the e-mail bot did not send on its own.
 * The list comes from GET /v1/email/drafts?status=...; it is refreshed every REFRESH_MS and by the
 * Refresh button, newest activity first. A selected draft is loaded in full from
 * GET /v1/email/drafts/{id} and decided with POST .../approve {text, agent} or .../reject {note, agent}.
 * Every piece of data is put on the page as text (textContent), never as HTML. The agent's name is
 * kept in localStorage. window.vbDrafts exposes the page's state (used by the browser tests).
 * The helpers shared with the other staff pages (requests, elements, dates) are window.ui (ui.js). */
(function () {
  "use strict";
  var REFRESH_MS = 5000;
  var LIST_LIMIT = 1000;
  var AGENT_KEY = "voicebot.agent";
  var REASONS = {
    low_confidence: "The bot was not confident enough in its answer",
    approval_required: "Every reply needs an agent's approval (automatic replies are off)",
    recipient_not_on_file: "The reply would go to an address that is not the customer's address on file",
    attachment_needs_human: "The message has attachments a person should look at",
    unverified_sender: "The sender could not be verified (the From address may be forged)",
    message_truncated: "The message was too long and was cut short",
    too_many_requests: "The message asks too many questions to answer automatically",
    empty_message: "The message has no text to answer"
  };
  var HANDOFFS = {
    human_requested: "The customer asked for a person",
    human_request: "The customer asked for a person",
    low_confidence: "The bot was not confident enough to answer",
    failed_turns: "Several requests in a row without an answer",
    verification_failed: "The customer's identity could not be verified",
    verification_required: "The customer's identity has to be verified first",
    tool_failed: "Customer records could not be reached",
    policy: "The conversation policy calls for a person"
  };
  var ACTIONS = { answer: "answer", clarify: "asks a question back", handoff: "hand to a person", end: "closing" };
  var STATUS_LABELS = { pending: "Pending", approved: "Approved", rejected: "Rejected" };

  var $ = ui.$, el = ui.el, show = ui.show, call = ui.call;
  var page = ui.parts();
  var syncLine = page.syncLine, list = page.list, empty = page.empty, listError = page.listError,
    placeholder = page.placeholder, detail = page.detail, actionError = page.actionError;
  var filter = $("#dr-filter");
  var refreshButton = $(".dr-refresh");
  var reply = $("#dr-reply");
  var agent = $("#dr-agent");
  var note = $("#dr-note");
  var approveButton = $(".dr-approve");
  var rejectButton = $(".dr-reject");
  var confirmLine = $(".dr-confirm");

  var state = window.vbDrafts = {
    drafts: [], selected: null, draft: null, busy: false, loads: 0, lastError: null
  };
  var listRequest = 0, detailRequest = 0;

  function when(iso) { return ui.when(iso, true); }

  function activity(draft) { return draft.decided_at || draft.created_at || ""; }

  function sizeText(bytes) {
    if (typeof bytes !== "number" || bytes < 0) return "size unknown";
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(bytes < 10240 ? 1 : 0) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function reasonLabel(code) {
    code = String(code);
    if (Object.prototype.hasOwnProperty.call(REASONS, code)) return REASONS[code];
    if (code.indexOf("handoff:") === 0) {
      var why = code.slice(8);
      if (Object.prototype.hasOwnProperty.call(HANDOFFS, why)) return HANDOFFS[why];
      if (why.indexOf("sensitive:") === 0) {
        return "A sensitive topic that needs a person (" + why.slice(10).replace(/_/g, " ") + ")";
      }
    }
    return code;  // an unknown code is shown as it is
  }

  /* the customer's subject (the draft's own is the reply's: "Re: ...") */
  function subjectOf(draft) {
    return (draft.original && draft.original.subject) || draft.subject || "(no subject)";
  }

  function sender(original) {
    if (!original) return "";
    return original.from_name ? original.from_name + " <" + original.from + ">" : (original.from || "");
  }

  /* --- the list ------------------------------------------------------------------------------- */

  function loadList() {
    var mine = ++listRequest;
    var status = filter.value;
    return call("GET", "/v1/email/drafts?status=" + encodeURIComponent(status) + "&limit=" + LIST_LIMIT)
      .then(function (data) {
        if (mine !== listRequest) return;
        var drafts = (data && data.drafts) || [];
        drafts.sort(function (a, b) { return activity(a) < activity(b) ? 1 : activity(a) > activity(b) ? -1 : 0; });
        state.drafts = drafts;
        state.loads += 1;
        show(listError, false);
        renderList();
        ui.updated(syncLine, countText(status, drafts.length));
        followSelected();
      }).catch(function (err) {
        if (mine !== listRequest) return;
        ui.notUpdated(syncLine, listError, "The drafts could not be loaded: " + err.message);
      });
  }

  function countText(status, n) {
    var what = status === "all" ? "draft" : status + " draft";
    return n + " " + what + (n === 1 ? "" : "s");
  }

  function renderList() {
    list.textContent = "";
    state.drafts.forEach(function (draft) {
      var button = ui.listItem(list, {
        className: "dr-item", idAttribute: "data-draft-id", id: draft.id, current: draft.id === state.selected,
        nameClass: "dr-item-subject", name: subjectOf(draft), badge: badge(draft.status),
        onSelect: function () { select(draft.id); }
      });
      button.setAttribute("data-status", draft.status);
      var who = (draft.customer && draft.customer.name) || (draft.original && draft.original.from) ||
        draft.to_address || "unknown sender";
      button.appendChild(el("span", "dr-item-from", who));
      var stamp = draft.decided_at
        ? (draft.status === "approved" ? "Approved " : "Rejected ") + when(draft.decided_at) +
          (draft.decided_by ? " by " + draft.decided_by : "")
        : "Received " + when(draft.original ? draft.original.received_at : draft.created_at);
      button.appendChild(el("span", "dr-item-when", stamp));
    });
    var none = state.drafts.length === 0;
    empty.textContent = filter.value === "pending" ? "No drafts are waiting for review." : "No drafts here.";
    show(empty, none);
  }

  function badge(status, node) { return ui.badge(status, STATUS_LABELS, "dr-badge-", node); }

  /* the selected draft was decided elsewhere (another agent): show its new state, keep any message */
  function followSelected() {
    if (!state.draft || state.busy) return;
    for (var i = 0; i < state.drafts.length; i++) {
      var d = state.drafts[i];
      if (d.id === state.draft.id && d.status !== state.draft.status) {
        loadDetail(d.id, { keepMessages: true });
        return;
      }
    }
  }

  /* --- one draft ------------------------------------------------------------------------------ */

  function select(id) {
    state.selected = id;
    ui.markCurrent(list, "data-draft-id", id);
    show(confirmLine, false);
    show(actionError, false);
    return loadDetail(id, {});
  }

  function loadDetail(id, options) {
    var mine = ++detailRequest;
    return call("GET", "/v1/email/drafts/" + encodeURIComponent(id)).then(function (draft) {
      if (mine !== detailRequest) return;
      renderDetail(draft, options);
    }).catch(function (err) {
      if (mine !== detailRequest) return;
      show(detail, false);
      placeholder.textContent = "The draft could not be loaded: " + err.message;
      placeholder.classList.add("ui-error");
      show(placeholder, true);
    });
  }

  function renderDetail(draft, options) {
    var previous = state.draft;
    state.draft = draft;
    placeholder.classList.remove("ui-error");
    show(placeholder, false);
    show(detail, true);
    $(".dr-title").textContent = subjectOf(draft);
    badge(draft.status, $("[data-testid=dr-status]"));

    var decision = $(".dr-decision");
    if (draft.status !== "pending") {
      decision.textContent = (draft.status === "approved" ? "Approved" : "Rejected") +
        (draft.decided_by ? " by " + draft.decided_by : "") +
        (draft.decided_at ? " on " + when(draft.decided_at) : "") +
        (draft.note ? ". Note: " + draft.note : ".");
    }
    show(decision, draft.status !== "pending");

    renderReasons(draft.reasons || []);
    renderCustomer(draft.customer);
    renderOriginal(draft.original || {});
    renderAnswers(draft.answers || []);

    var pending = draft.status === "pending";
    show($(".dr-act"), pending);
    if (pending && !(previous && previous.id === draft.id && previous.status === "pending")) {
      reply.value = draft.proposed_text || "";
      note.value = "";
    }
    $(".dr-to").textContent = draft.to_address
      ? "To " + draft.to_address + ", subject \u201c" + (draft.subject || "") + "\u201d, in the same thread."
      : "The message has no address to reply to.";
    var final = $("[data-testid=dr-final]");
    $(".dr-final-text").textContent = draft.final_text || "";
    show(final, draft.status === "approved" && !!draft.final_text);
    if (!options.keepMessages) {
      show(actionError, false);
      show(confirmLine, false);
    }
  }

  function renderReasons(reasons) {
    var box = $(".dr-reasons");
    box.textContent = "";
    if (!reasons.length) box.appendChild(el("li", "ui-muted", "No reason was recorded."));
    reasons.forEach(function (code) {
      var item = el("li", null, reasonLabel(code));
      item.setAttribute("data-reason", code);
      item.title = code;
      box.appendChild(item);
    });
  }

  function renderCustomer(customer) {
    var box = $(".dr-customer");
    box.textContent = "";
    if (!customer) {
      box.appendChild(el("span", "ui-muted", "No customer matched"));
      return;
    }
    box.appendChild(el("strong", null, customer.name || "(no name)"));
    if (customer.email) box.appendChild(document.createTextNode(" · " + customer.email));
    if (customer.id) box.appendChild(el("span", "ui-muted", " · customer " + customer.id));
  }

  function renderOriginal(original) {
    var headers = $(".dr-headers");
    headers.textContent = "";
    [["From", sender(original)], ["To", (original.to || []).join(", ")], ["Subject", original.subject],
      ["Date", when(original.date || original.received_at)],
      ["Received", original.date ? when(original.received_at) : ""]].forEach(function (pair) {
      if (!pair[1]) return;
      headers.appendChild(el("dt", null, pair[0]));
      headers.appendChild(el("dd", null, pair[1]));
    });

    var flags = [];
    if (original.html_only) flags.push("The message was sent as HTML only; this is its text.");
    if (original.truncated) flags.push("The message was too long and is shown cut short.");
    $(".dr-flags").textContent = flags.join(" ");
    show($(".dr-flags"), flags.length > 0);

    var text = $("[data-testid=dr-original-text]");
    text.textContent = original.text || "";
    text.classList.toggle("ui-muted", !original.text);
    if (!original.text) text.textContent = "(the message has no text)";

    fold("[data-testid=dr-quoted]", ".dr-quoted-text", original.quoted);
    fold("[data-testid=dr-signature]", ".dr-signature-text", original.signature);

    var forwarded = $(".dr-forwarded");
    forwarded.textContent = "";
    (original.forwarded || []).forEach(function (message) {
      var box = el("details", "dr-fold");
      box.appendChild(el("summary", null, "Forwarded message" +
        (message.from_ ? " from " + message.from_ : "") + (message.subject ? ": " + message.subject : "")));
      box.appendChild(el("div", "dr-text", message.text || ""));
      forwarded.appendChild(box);
    });

    var attachments = $(".dr-attachments");
    var items = attachments.querySelector("ul");
    items.textContent = "";
    (original.attachments || []).forEach(function (a) {
      var item = el("li");
      item.appendChild(el("span", "dr-file", a.filename || "(unnamed)"));
      item.appendChild(el("span", "ui-muted", " " + [a.content_type, sizeText(a.size)]
        .filter(Boolean).join(", ") + (a.inline ? ", inline" : "")));
      items.appendChild(item);
    });
    show(attachments, (original.attachments || []).length > 0);
  }

  function fold(boxSelector, textSelector, text) {
    var box = $(boxSelector);
    $(textSelector).textContent = text || "";
    box.open = false;
    show(box, !!text);
  }

  function renderAnswers(answers) {
    var box = $(".dr-answers");
    box.textContent = "";
    if (!answers.length) box.appendChild(el("li", "ui-muted", "The bot found no request to answer."));
    answers.forEach(function (a) {
      var item = el("li", "dr-answer");
      item.appendChild(el("p", "dr-request", a.request || ""));
      item.appendChild(el("p", "dr-answer-text", a.text || ""));
      var confidence = typeof a.confidence === "number" ? Math.round(a.confidence * 100) + "%" : "?";
      var meta = el("p", "ui-muted dr-answer-meta",
        "Confidence " + confidence + " · " + (ACTIONS[a.action] || a.action || "") +
        (a.intent ? " · intent " + a.intent.replace(/_/g, " ") : ""));
      item.appendChild(meta);
      box.appendChild(item);
    });
  }

  /* --- decisions ------------------------------------------------------------------------------ */

  function busy(on) {
    state.busy = on;
    approveButton.disabled = on;
    rejectButton.disabled = on;
  }

  function decide(kind) {
    var draft = state.draft;
    if (!draft || state.busy) return;
    var body = {};
    var name = agent.value.trim();
    if (name) body.agent = name;
    if (kind === "approve") body.text = reply.value;
    else if (note.value.trim()) body.note = note.value.trim();
    busy(true);
    ui.perform({
      state: state, confirm: confirmLine, error: actionError,
      request: function () {
        return call("POST", "/v1/email/drafts/" + encodeURIComponent(draft.id) + "/" + kind, body);
      },
      confirmed: function (done) {
        confirmLine.className = "dr-confirm dr-confirm-" + kind;
        return kind === "approve"
          ? "Approved: the reply is queued to be sent to " + (done.to_address || draft.to_address) + "."
          : "Rejected: no reply will be sent." + (done.note ? " Your note was saved." : "");
      },
      failed: kind === "approve" ? "Not sent: " : "Not rejected: "
    }).then(function (ok) {
      if (ok) return Promise.all([loadDetail(draft.id, { keepMessages: true }), loadList()]);
    }).then(function () { busy(false); });
  }

  approveButton.addEventListener("click", function () { decide("approve"); });
  rejectButton.addEventListener("click", function () { decide("reject"); });
  refreshButton.addEventListener("click", function () { loadList(); });
  filter.addEventListener("change", function () { list.textContent = ""; loadList(); });

  try { agent.value = window.localStorage.getItem(AGENT_KEY) || ""; } catch (e) { /* storage off */ }
  agent.addEventListener("input", function () {
    try { window.localStorage.setItem(AGENT_KEY, agent.value.trim()); } catch (e) { /* storage off */ }
  });

  ui.consoleNav("drafts", "email").then(function (me) {
    if (!agent.value) agent.value = me.user.username;
    loadList();
    setInterval(function () { if (!document.hidden) loadList(); }, REFRESH_MS);
  }).catch(function () { /* not allowed: the page says so */ });
})();
