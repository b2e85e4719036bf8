/* voicebot chat widget: one script tag, no dependencies.
 * Talks to the server it was loaded from over the WebSocket /v1/chat.
 * The conversation id is kept in sessionStorage so a page reload continues the conversation
 * (the earlier turns are shown again, read from GET /v1/conversations/{id}). When the bot hands the
 * chat to a person, the server pushes what is happening ("notice" frames: place in the queue, the
 * likely wait, "Ana has joined") and the agent's replies ("agent" frames); while the agent has the
 * chat the bot's reply to a message is empty and not shown. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script ? new URL(script.src, location.href).origin : location.origin;
  var KEY = "voicebot.conversation";

  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = base + "/static/widget.css";
  document.head.appendChild(css);

  var root = document.createElement("div");
  root.className = "vb-root";
  root.innerHTML =
    '<button class="vb-launcher" type="button" aria-label="Open chat" data-testid="vb-open">Chat</button>' +
    '<section class="vb-panel" role="dialog" aria-label="Chat" hidden>' +
    '  <header class="vb-header"><span>Customer service</span>' +
    '    <button class="vb-close" type="button" aria-label="Close chat">×</button></header>' +
    '  <ol class="vb-log" aria-live="polite" data-testid="vb-log"></ol>' +
    '  <div class="vb-csat" hidden><span>How did we do?</span></div>' +
    '  <form class="vb-form"><input class="vb-input" name="text" autocomplete="off" maxlength="4000"' +
    '    placeholder="Type your message…" aria-label="Message" data-testid="vb-input">' +
    '    <button class="vb-send" type="submit" data-testid="vb-send">Send</button></form>' +
    "</section>";
  document.body.appendChild(root);

  var panel = root.querySelector(".vb-panel");
  var log = root.querySelector(".vb-log");
  var form = root.querySelector(".vb-form");
  var input = root.querySelector(".vb-input");
  var csat = root.querySelector(".vb-csat");
  var conversationId = sessionStorage.getItem(KEY);
  var socket = null;
  var pending = [];
  var started = false;

  function add(role, text, extra) {
    var item = document.createElement("li");
    item.className = "vb-msg vb-" + role;
    item.setAttribute("data-role", role);
    item.textContent = text;
    if (extra && extra.agent) {
      var name = document.createElement("strong");
      name.className = "vb-who";
      name.textContent = extra.agent;
      item.insertBefore(name, item.firstChild);
    }
    if (extra && extra.kind) item.setAttribute("data-kind", extra.kind);
    if (extra && extra.action) item.setAttribute("data-action", extra.action);
    if (extra && extra.citations && extra.citations.length) {
      var src = document.createElement("small");
      src.className = "vb-sources";
      src.textContent = "Source: " + extra.citations.map(function (c) { return c.title; }).join("; ");
      item.appendChild(src);
    }
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function showReply(reply) {
    if (!reply || !reply.text) return;  // no text: a person has the chat, the bot stays silent
    add("bot", reply.text, reply);
    if (reply.action === "end") showCsat();
  }

  function showHistory() {
    fetch(base + "/v1/conversations/" + conversationId).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (conversation) {
      if (!conversation || log.children.length) return;
      conversation.turns.forEach(function (t) {
        if (t.role === "customer") add("customer", t.text);
        else if (t.role === "agent") add("agent", t.text, { agent: "Agent" });
        else showReply({ text: t.text, action: t.action, citations: t.citations });
      });
    });
  }

  function showCsat() {
    if (!csat.hidden) return;
    csat.hidden = false;
    [1, 2, 3, 4, 5].forEach(function (score) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = String(score);
      b.setAttribute("aria-label", "Rate " + score + " of 5");
      b.addEventListener("click", function () {
        fetch(base + "/v1/conversations/" + conversationId + "/csat", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ score: score })
        }).then(function (r) {
          if (r.ok) csat.textContent = "Thank you for your feedback!";
          else add("error", "Sorry, your rating could not be saved.");
        });
      });
      csat.appendChild(b);
    });
    log.scrollTop = log.scrollHeight;
  }

  function connect() {
    var url = base.replace(/^http/, "ws") + "/v1/chat";
    socket = new WebSocket(url);
    socket.addEventListener("open", function () {
      var start = { type: "start" };
      if (conversationId) start.conversation_id = conversationId;
      socket.send(JSON.stringify(start));
    });
    socket.addEventListener("message", function (event) {
      var frame = JSON.parse(event.data);
      if (frame.type === "started") {
        var resumed = !frame.reply && !log.children.length;
        conversationId = frame.conversation_id;
        sessionStorage.setItem(KEY, conversationId);
        started = true;
        if (resumed) showHistory(); else showReply(frame.reply);
        pending.splice(0).forEach(sendFrame);
      } else if (frame.type === "reply") {
        showReply(frame.reply);
      } else if (frame.type === "agent") {
        add("agent", frame.text, { agent: frame.agent });
      } else if (frame.type === "notice") {
        add("system", frame.text, { kind: frame.kind });
      } else if (frame.type === "error") {
        if (frame.error.code === "notfound") {
          sessionStorage.removeItem(KEY);
          conversationId = null;
          socket.send(JSON.stringify({ type: "start" }));
          return;
        }
        add("error", frame.error.message);
      }
    });
    socket.addEventListener("close", function () {
      socket = null;
      started = false;
      if (pending.length) {
        pending = [];
        add("error", "Could not reach customer service. Please send your message again.");
      }
    });
  }

  function sendFrame(text) {
    socket.send(JSON.stringify({ type: "message", text: text }));
  }

  function send(text) {
    add("customer", text);
    if (!socket) connect();
    if (started) sendFrame(text); else pending.push(text);
  }

  root.querySelector(".vb-launcher").addEventListener("click", function () {
    panel.hidden = false;
    if (!socket) connect();
    input.focus();
  });
  root.querySelector(".vb-close").addEventListener("click", function () { panel.hidden = true; });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });
})();
