/* The supervisor's live board (/live): the active calls and chats with their transcripts as they
 * stream, a Listen button on calls (window.listen, listen.js) and Take over on chats.
 * The board loads GET /v1/live/active, then applies the /v1/live feed's events on top
 * (conversation.started / .turn / .ended, handoff.waiting / .taken); after a dropped feed it loads
 * again. Every piece of data goes on the page as text. */
(function () {
  "use strict";

  var ui = window.ui;
  var TURNS_SHOWN = 20, ENDED_KEEP_MS = 15000;
  var board = ui.$("[data-testid=lv-board]"), empty = ui.$("[data-testid=lv-empty]");
  var errorLine = ui.$("[data-testid=lv-error]"), syncLine = ui.$("[data-testid=lv-sync]");
  var panel = ui.$("[data-testid=lv-listen]"), panelWho = ui.$("[data-testid=lv-listen-who]");
  var panelState = ui.$("[data-testid=lv-listen-state]"), meter = ui.$("[data-testid=lv-meter]");
  var panelError = ui.$("[data-testid=lv-listen-error]"), whisperButton = ui.$("[data-testid=lv-whisper]");
  var cards = {};  // conversation id -> {info, node, turns, status}
  var listeningTo = null, meterTimer = null;
  var STATE_LABELS = { connecting: "connecting", listening: "live", ended: "call ended", failed: "failed",
    idle: "stopped" };

  function who(info) {
    return info.caller || info.email || (info.channel === "voice" ? "Browser call" : "Web chat") +
      " " + String(info.conversation_id).slice(0, 6);
  }

  function card(info) {
    var id = info.conversation_id;
    var entry = cards[id];
    if (!entry) {
      var node = ui.el("li", "lv-card");
      node.setAttribute("data-testid", "lv-card");
      node.setAttribute("data-conversation", id);
      entry = cards[id] = { info: info, node: node, turns: [] };
      var head = ui.el("div", "lv-head");
      entry.channel = ui.el("span");
      entry.who = ui.el("span", "lv-who");
      entry.status = ui.el("span");
      entry.status.setAttribute("data-testid", "lv-status");
      entry.since = ui.el("span", "lv-since");
      head.appendChild(entry.channel); head.appendChild(entry.who); head.appendChild(entry.status);
      head.appendChild(entry.since);
      entry.list = ui.el("ol", "lv-turns");
      entry.list.setAttribute("aria-label", "Transcript");
      entry.list.setAttribute("data-testid", "lv-turns");
      entry.actions = ui.el("div", "lv-actions");
      entry.error = ui.el("p", "ui-error ui-action-error");
      entry.error.setAttribute("role", "alert");
      ui.show(entry.error, false);
      node.appendChild(head); node.appendChild(entry.list); node.appendChild(entry.actions);
      node.appendChild(entry.error);
      board.insertBefore(node, board.firstChild);
      buildActions(entry);
    }
    entry.info = Object.assign(entry.info, info);
    ui.badge(entry.info.channel === "voice" ? "voice" : entry.info.channel, { voice: "call", chat: "chat" },
      "lv-channel-", entry.channel);
    entry.who.textContent = who(entry.info);
    entry.since.textContent = entry.info.started_at ? "since " + ui.when(entry.info.started_at) : "";
    setStatus(entry, entry.info.status || "active");
    ui.show(empty, false);
    return entry;
  }

  function setStatus(entry, status, label) {
    entry.info.status = status;
    ui.badge(status, { active: "bot", handoff: "waiting for a person", taken: label || "with an agent",
      ended: "ended" }, "lv-status-", entry.status);
    if (status === "ended") entry.node.setAttribute("data-ended", "true");
  }

  function buildActions(entry) {
    var id = entry.info.conversation_id;
    if (entry.info.channel === "voice") {
      var listenButton = ui.el("button", "ui-button ui-primary", "Listen");
      listenButton.type = "button";
      listenButton.setAttribute("data-testid", "lv-listen-button");
      listenButton.addEventListener("click", function () { startListening(entry); });
      entry.actions.appendChild(listenButton);
      entry.listenButton = listenButton;
    } else if (entry.info.channel === "chat") {
      var take = ui.el("button", "ui-button ui-primary", "Take over");
      take.type = "button";
      take.setAttribute("data-testid", "lv-take");
      take.addEventListener("click", function () {
        take.disabled = true;
        ui.show(entry.error, false);
        ui.call("POST", "/v1/desk/conversations/" + encodeURIComponent(id) + "/take").then(function () {
          take.remove();
          var link = ui.el("a", null, "Open in the desk");
          link.href = "/desk?conversation=" + encodeURIComponent(id);
          link.setAttribute("data-testid", "lv-desk-link");
          entry.actions.appendChild(link);
          setStatus(entry, "taken", "taken by you");
        }).catch(function (err) {
          take.disabled = false;
          entry.error.textContent = "Could not take over: " + err.message;
          ui.show(entry.error, true);
        });
      });
      entry.actions.appendChild(take);
    }
  }

  function addTurn(entry, turn) {
    entry.turns.push(turn);
    var item = ui.el("li", "lv-turn");
    item.setAttribute("data-role", turn.role);
    item.appendChild(ui.el("span", "lv-role", turn.role === "customer" ? "Customer" : turn.role));
    item.appendChild(document.createTextNode(turn.text || ""));
    entry.list.appendChild(item);
    while (entry.list.children.length > TURNS_SHOWN) entry.list.removeChild(entry.list.firstChild);
    entry.list.scrollTop = entry.list.scrollHeight;
  }

  function ended(entry) {
    setStatus(entry, "ended");
    if (entry.listenButton) entry.listenButton.disabled = true;
    setTimeout(function () {
      if (cards[entry.info.conversation_id] === entry && listeningTo !== entry.info.conversation_id) {
        entry.node.remove();
        delete cards[entry.info.conversation_id];
        ui.show(empty, Object.keys(cards).length === 0);
      }
    }, ENDED_KEEP_MS);
  }

  function load() {
    return ui.call("GET", "/v1/live/active").then(function (answer) {
      ui.show(errorLine, false);
      answer.conversations.slice().reverse().forEach(function (info) {
        var entry = card(info);
        entry.list.textContent = "";
        entry.turns = [];
        info.turns.forEach(function (turn) { addTurn(entry, turn); });
        if (info.call && info.call.agent_leg && info.call.agent_leg !== "idle") {
          setStatus(entry, "taken", "agent: " + info.call.agent_leg);
        }
      });
      ui.show(empty, Object.keys(cards).length === 0);
      ui.updated(syncLine, Object.keys(cards).length + " active");
    }).catch(function (err) {
      ui.notUpdated(syncLine, errorLine, "The board could not be loaded: " + err.message);
    });
  }

  function onEvent(topic, data) {
    var id = data.conversation_id;
    if (!id) return;
    if (topic === "conversation.started") {
      card({ conversation_id: id, channel: data.channel, caller: data.caller, email: data.email,
        status: "active", started_at: data.at });
    } else if (topic === "conversation.turn") {
      addTurn(cards[id] || card({ conversation_id: id, channel: data.channel, status: "active" }), data);
    } else if (topic === "handoff.waiting" && cards[id]) {
      setStatus(cards[id], "handoff");
    } else if (topic === "handoff.taken" && cards[id]) {
      setStatus(cards[id], "taken", "with " + (data.agent || "an agent"));
    } else if (topic === "conversation.ended" && cards[id]) {
      ended(cards[id]);
    }
    ui.updated(syncLine, Object.keys(cards).length + " active");
  }

  /* --- listening ------------------------------------------------------------------------------ */
  function startListening(entry) {
    listeningTo = entry.info.conversation_id;
    panelWho.textContent = who(entry.info);
    ui.show(panel, true);
    ui.show(panelError, false);
    whisperButton.textContent = "Whisper to the agent";
    window.listen.start(listeningTo, function (state, reason) {
      ui.badge(state, STATE_LABELS, "lv-listen-", panelState);
      if (state === "failed" || state === "ended") {
        panelError.textContent = reason;
        ui.show(panelError, state === "failed");
      }
    });
    clearInterval(meterTimer);
    meterTimer = setInterval(function () {
      meter.style.width = Math.min(100, Math.round(window.listen.stats.rms * 400)) + "%";
    }, 100);
  }

  ui.$("[data-testid=lv-stop]").addEventListener("click", function () {
    window.listen.stop();
    clearInterval(meterTimer);
    meter.style.width = "0";
    listeningTo = null;
    ui.show(panel, false);
  });

  whisperButton.addEventListener("click", function () {
    if (!listeningTo) return;
    ui.show(panelError, false);
    if (window.listen.whispering()) {
      window.listen.stopWhisper();
      whisperButton.textContent = "Whisper to the agent";
      return;
    }
    whisperButton.disabled = true;
    window.listen.whisper(listeningTo).then(function () {
      whisperButton.textContent = "Stop whispering";
    }).catch(function (err) {
      panelError.textContent = "Whisper is not possible: " + err.message;
      ui.show(panelError, true);
    }).finally(function () { whisperButton.disabled = false; });
  });

  ui.consoleNav("live", "live").then(function () {
    return load();
  }).then(function () {
    var first = true;
    ui.liveFeed(["conversation.", "handoff."], onEvent, function (state) {
      if (state === "open" && !first) load();
      if (state === "open") first = false;
    });
  }).catch(function () {});
})();
