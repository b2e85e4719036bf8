/* voicebot handoff desk: agents answer the conversations the bot handed to a person.
 * The queue comes from GET /v1/desk/queue and is reloaded when the live feed (WebSocket /v1/live,
 * topics handoff. and conversation.) says it changed, plus a slow fallback every FALLBACK_MS. A selected
 * handoff is loaded in full from GET /v1/desk/handoffs/{id} (context first, then the customer, the
 * transcript, the e-mail thread); new turns of it arrive on the feed. Actions: POST .../take, .../reply
 * {text}, .../hand-back, .../close; a voice handoff is accepted in the browser with window.agentCall
 * (agentcall.js, which takes it and joins the held call) when it is there. ?handoff=<id> or ?conversation=<id> selects one.
 * Every piece of data is put on the page as text (textContent), never as HTML. window.vbDesk exposes
 * the page's state (used by the browser tests). */
(function () {
  "use strict";
  var FALLBACK_MS = 30000;
  var RELOAD_DEBOUNCE_MS = 100;
  var REASONS = {
    human_requested: "The customer asked for a person",
    human_request: "The customer asked for a person",
    low_confidence: "The bot was not confident enough to answer",
    failed_turns: "Several requests in a row without an answer",
    verification_failed: "The customer's identity could not be verified",
    verification_required: "The customer's identity has to be verified first",
    tool_failed: "Customer records could not be reached",
    policy: "The conversation policy calls for a person",
    taken_over: "Taken over from the bot by a person"
  };
  var CHANNELS = { chat: "Chat", voice: "Call", email: "E-mail" };
  var STATUS = { waiting: "Waiting", taken: "With an agent", closed: "Closed" };
  var ROLES = { customer: "Customer", bot: "Bot", agent: "Agent" };

  var $ = ui.$, el = ui.el, show = ui.show, call = ui.call;
  var syncLine = $("[data-testid=dk-sync]");
  var queueList = $("[data-testid=dk-queue]");
  var takenList = $("[data-testid=dk-taken]");
  var empty = $("[data-testid=dk-empty]");
  var takenEmpty = $("[data-testid=dk-taken-empty]");
  var listError = $("[data-testid=dk-list-error]");
  var placeholder = $("[data-testid=dk-placeholder]");
  var detail = $("[data-testid=dk-detail]");
  var transcript = $("[data-testid=dk-transcript]");
  var buttons = {
    take: $("[data-testid=dk-take]"), accept: $("[data-testid=dk-accept-call]"),
    hangUp: $("[data-testid=dk-hang-up]"), handBack: $("[data-testid=dk-hand-back]"),
    close: $("[data-testid=dk-close]"), send: $("[data-testid=dk-send]")
  };
  var replyBox = $("[data-testid=dk-reply-box]");
  var replyText = $("#dk-reply");
  var confirmLine = $("[data-testid=dk-confirm]");
  var errorLine = $("[data-testid=dk-error]");
  var audio = $("[data-testid=dk-audio]");

  var state = window.vbDesk = {
    me: null, queue: { waiting: [], taken: [] }, selected: null, detail: null, loadedAt: 0,
    loads: 0, busy: false, lastError: null, inCall: false
  };
  var queueRequest = 0, detailRequest = 0, reloadTimer = null;

  /* --- formatting -------------------------------------------------------------------------- */

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + (seconds % 60) + " s";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function reasonText(code) {
    code = String(code || "");
    if (Object.prototype.hasOwnProperty.call(REASONS, code)) return REASONS[code];
    if (code.indexOf("sensitive:") === 0) return "A sensitive topic (" + code.slice(10).replace(/_/g, " ") + ")";
    return code || "not given";
  }

  function who(entry) {
    return entry.customer_name || (CHANNELS[entry.channel] || entry.channel) + " customer";
  }

  /* seconds waited now: the server's figure plus the time since it was loaded (still waiting only) */
  function waitedNow(entry) {
    var extra = entry.status === "waiting" ? (Date.now() - state.loadedAt) / 1000 : 0;
    return entry.waited_seconds + extra;
  }

  function waitedText(entry) {
    return entry.status === "waiting" ? "waiting " + duration(waitedNow(entry))
      : "waited " + duration(entry.waited_seconds);
  }

  /* --- the queue --------------------------------------------------------------------------- */

  function loadQueue() {
    var mine = ++queueRequest;
    return call("GET", "/v1/desk/queue").then(function (queue) {
      if (mine !== queueRequest) return;
      state.queue = queue;
      state.loadedAt = Date.now();
      state.loads += 1;
      show(listError, false);
      renderQueue();
      var count = queue.waiting.length;
      ui.updated(syncLine, count === 1 ? "1 waiting" : count + " waiting");
      pickFromAddress();
    }).catch(function (err) {
      if (mine !== queueRequest) return;
      state.lastError = err.message;
      ui.notUpdated(syncLine, listError, "The queue could not be loaded: " + err.message);
    });
  }

  function scheduleReload() {
    if (reloadTimer) return;
    reloadTimer = setTimeout(function () { reloadTimer = null; loadQueue(); }, RELOAD_DEBOUNCE_MS);
  }

  function renderList(list, entries, emptyLine) {
    list.textContent = "";
    entries.forEach(function (entry) {
      var button = ui.listItem(list, {
        className: "dk-item", idAttribute: "data-handoff", id: entry.id, current: entry.id === state.selected,
        nameClass: "dk-item-name", name: who(entry),
        badge: ui.badge(entry.channel, CHANNELS, "dk-channel-"),
        onSelect: function () { select(entry.id); }
      });
      button.setAttribute("data-testid", "dk-item");
      button.appendChild(el("span", "dk-item-summary", entry.summary || reasonText(entry.reason)));
      var meta = el("span", "dk-item-meta");
      meta.setAttribute("data-waited", entry.id);
      button.appendChild(meta);
      updateMeta(meta, entry);
    });
    show(emptyLine, entries.length === 0);
  }

  function updateMeta(meta, entry) {
    var parts = [];
    if (entry.position) parts.push("#" + entry.position);
    parts.push(waitedText(entry));
    if (entry.taken_by) parts.push("with " + entry.taken_by);
    meta.textContent = parts.join(" · ");
  }

  function renderQueue() {
    renderList(queueList, state.queue.waiting, empty);
    renderList(takenList, state.queue.taken, takenEmpty);
  }

  function findEntry(id) {
    var all = state.queue.waiting.concat(state.queue.taken);
    for (var i = 0; i < all.length; i++) if (all[i].id === id) return all[i];
    return null;
  }

  /* every second: the waiting times grow without asking the server */
  function tick() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-waited]"), function (meta) {
      var entry = findEntry(meta.getAttribute("data-waited"));
      if (entry) updateMeta(meta, entry);
    });
    if (state.detail) {
      var h = state.detail.handoff;
      var live = findEntry(h.id) || h;
      $("[data-testid=dk-waited]").textContent = waitedText(live);
    }
  }

  var addressPicked = false;
  function pickFromAddress() {
    if (addressPicked) return;
    addressPicked = true;
    var params = new URLSearchParams(window.location.search);
    var wanted = params.get("handoff");
    var conversation = params.get("conversation");
    if (!wanted && conversation) {
      var all = state.queue.waiting.concat(state.queue.taken);
      for (var i = 0; i < all.length; i++) if (all[i].conversation_id === conversation) wanted = all[i].id;
    }
    if (wanted) select(wanted);
  }

  /* --- the selected handoff ---------------------------------------------------------------- */

  function select(id) {
    state.selected = id;
    ui.markCurrent(queueList, "data-handoff", id);
    ui.markCurrent(takenList, "data-handoff", id);
    show(confirmLine, false);
    show(errorLine, false);
    return loadDetail();
  }

  function loadDetail() {
    var id = state.selected;
    if (!id) return Promise.resolve();
    var mine = ++detailRequest;
    return call("GET", "/v1/desk/handoffs/" + encodeURIComponent(id)).then(function (data) {
      if (mine !== detailRequest) return;
      state.detail = data;
      renderDetail(data);
    }).catch(function (err) {
      if (mine !== detailRequest) return;
      state.lastError = err.message;
      errorLine.textContent = "This conversation could not be loaded: " + err.message;
      show(errorLine, true);
    });
  }

  function facts(list, pairs) {
    list.textContent = "";
    pairs.forEach(function (pair) {
      list.appendChild(el("dt", null, pair[0]));
      list.appendChild(el("dd", null, pair[1]));
    });
  }

  function renderDetail(data) {
    var h = data.handoff, context = data.context;
    show(placeholder, false);
    show(detail, true);
    $("#dk-title").textContent = who(h);
    ui.badge(h.channel, CHANNELS, "dk-channel-", $("[data-testid=dk-channel]"));
    ui.badge(h.status, STATUS, "dk-status-", $("[data-testid=dk-status]"));
    $("[data-testid=dk-waited]").textContent = waitedText(findEntry(h.id) || h);

    $("[data-testid=dk-summary]").textContent = context.summary || "No summary.";
    $("[data-testid=dk-reason]").textContent = reasonText(context.reason);
    $("[data-testid=dk-intent]").textContent = context.intent || "not recognised";
    var fields = Object.keys(context.fields || {}).map(function (k) {
      var value = context.fields[k];
      return [k.replace(/_/g, " "), typeof value === "object" ? JSON.stringify(value) : String(value)];
    });
    facts($("[data-testid=dk-fields]"), fields.length ? fields : [["—", "nothing collected"]]);
    renderCustomer(data);
    transcript.textContent = "";
    shownTurns = {};
    data.transcript.forEach(addTurn);
    renderEmail(data.email);
    renderActions(h);
  }

  function renderCustomer(data) {
    var box = $(".dk-customer-body");
    box.textContent = "";
    var c = data.customer;
    if (!c) {
      box.appendChild(el("p", "ui-muted", data.customer_error ||
        "Not matched to a customer record (the customer was not identified)."));
      return;
    }
    var list = el("dl", "dk-facts");
    facts(list, [["Name", c.name], ["Phone", c.phone || "—"], ["E-mail", c.email || "—"], ["Customer ID", c.id]]);
    box.appendChild(list);
    if (c.orders && c.orders.length) {
      box.appendChild(el("h4", null, "Recent orders"));
      var orders = el("ul", "dk-orders");
      c.orders.forEach(function (o) {
        var items = (o.items || []).join(", ");
        orders.appendChild(el("li", null, o.id + " · " + o.status + (items ? " · " + items : "")));
      });
      box.appendChild(orders);
    }
  }

  var shownTurns = {};  // role|at|text of the turns on the page: a live event and a reload never show one twice

  function addTurn(turn) {
    var key = turn.role + "|" + turn.at + "|" + turn.text;
    if (shownTurns[key]) return;
    shownTurns[key] = true;
    var item = el("li", "dk-turn dk-turn-" + turn.role);
    item.setAttribute("data-role", turn.role);
    var label = ROLES[turn.role] || turn.role;
    if (turn.role === "agent" && turn.agent) label += " (" + turn.agent + ")";
    item.appendChild(el("span", "dk-turn-who", label + (turn.at ? " · " + ui.when(turn.at) : "")));
    item.appendChild(document.createTextNode(turn.text));
    transcript.appendChild(item);
    transcript.scrollTop = transcript.scrollHeight;
  }

  function renderEmail(mail) {
    var box = $("[data-testid=dk-email]");
    show(box, !!mail);
    if (!mail) return;
    var thread = box.querySelector(".dk-thread");
    thread.textContent = "";
    mail.messages.forEach(function (m) {
      var item = el("li", "dk-mail");
      var head = (m.direction === "in" ? "From " + (m.from || "?") : "To " + m.to.join(", ")) +
        " · " + ui.when(m.at, true) + " · " + m.subject;
      item.appendChild(el("span", "dk-turn-who", head));
      item.appendChild(document.createTextNode(m.text));
      thread.appendChild(item);
    });
  }

  function renderActions(h) {
    var mine = h.status === "taken" && h.taken_by === state.me;
    var open = h.status !== "closed";
    var voice = h.channel === "voice";
    show(buttons.take, h.status === "waiting" && !voice);
    show(buttons.accept, voice && open && (h.status === "waiting" || mine) && !state.inCall);
    show(buttons.hangUp, voice && state.inCall);
    buttons.handBack.disabled = buttons.close.disabled = !(open && (h.status === "waiting" || mine));
    show(replyBox, mine && !voice);
    if (mine && !voice) {
      $("[data-testid=dk-reply-to]").textContent = h.channel === "email"
        ? "Sent as an e-mail reply in the customer's thread" + (state.detail.email && state.detail.email.to
          ? " to " + state.detail.email.to : "") + "."
        : "Shown in the customer's chat at once.";
    }
    if (h.status === "taken" && !mine) {
      confirmLine.textContent = h.taken_by + " has this conversation.";
      show(confirmLine, true);
    }
  }

  /* --- actions ----------------------------------------------------------------------------- */

  function act(request, done, failed) {
    if (state.busy) return Promise.resolve(false);
    state.busy = true;
    return ui.perform({
      request: request, confirmed: done, failed: failed, confirm: confirmLine, error: errorLine, state: state
    }).then(function (worked) {
      state.busy = false;
      loadQueue();
      return loadDetail().then(function () { return worked; });
    });
  }

  function post(what, body) {
    return call("POST", "/v1/desk/handoffs/" + encodeURIComponent(state.selected) + "/" + what, body);
  }

  buttons.take.addEventListener("click", function () {
    act(function () { return post("take"); }, function () { return "You have this conversation now."; },
      "Could not take it: ");
  });
  buttons.handBack.addEventListener("click", function () {
    act(function () { return post("hand-back"); }, function () { return "Handed back to the bot."; },
      "Could not hand it back: ");
  });
  buttons.close.addEventListener("click", function () {
    act(function () { return post("close"); }, function () { return "Closed as resolved."; }, "Could not close it: ");
  });
  buttons.accept.addEventListener("click", function () {
    act(function () {
      if (!window.agentCall) {
        return Promise.reject(new Error("calls cannot be answered from this page (agentcall.js is not loaded)."));
      }
      // the call endpoint takes the handoff and connects in one step (no handoff taken without a call)
      window.agentCall.onstate = function (callState) {
        state.inCall = callState === "connecting" || callState === "connected";
        if (state.detail) renderActions(state.detail.handoff);
      };
      return window.agentCall.accept(state.selected, audio);
    }, function () { return "The call is connected."; }, "Could not accept the call: ");
  });
  buttons.hangUp.addEventListener("click", function () {
    act(function () {
      return Promise.resolve(window.agentCall && window.agentCall.hangUp()).then(function () { state.inCall = false; });
    }, function () { return "The call has ended."; }, "Could not hang up: ");
  });
  replyBox.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = replyText.value.trim();
    if (!text) return;
    act(function () { return post("reply", { text: text }); }, function (answer) {
      replyText.value = "";
      if (answer && answer.email) return "E-mail sent to " + answer.email.to + " (" + answer.email.status + ").";
      return "Sent.";
    }, "Could not send: ");
  });

  /* --- live --------------------------------------------------------------------------------- */

  function onEvent(topic, data) {
    if (topic.indexOf("handoff.") === 0) {
      scheduleReload();
      if (state.detail && data.handoff_id === state.detail.handoff.id && !state.busy) loadDetail();
      return;
    }
    if (topic === "conversation.turn" && state.detail &&
        data.conversation_id === state.detail.conversation.id) {
      addTurn(data);
    }
  }

  ui.consoleNav("desk", "desk").then(function (me) {
    state.me = me.user.username;
    var first = true;
    ui.liveFeed(["handoff.", "conversation."], onEvent, function (feed) {
      if (feed === "open" && !first) { loadQueue(); loadDetail(); }  // catch up on what was missed
      if (feed === "open") first = false;
    });
    setInterval(tick, 1000);
    setInterval(function () { if (!document.hidden) loadQueue(); }, FALLBACK_MS);
    return loadQueue();
  }).catch(function () { /* not allowed: the page says so */ });
})();
