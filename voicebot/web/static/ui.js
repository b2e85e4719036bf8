/* voicebot console pages' shared helpers (session, navigation, requests, live feed, lists), as window.ui.
 * Plain browser JS with no build step: a page loads /static/ui.js (defer) before its own script
 * (defer, later in the document, so it runs after this one). Every piece of data goes on the page
 * as text (textContent), never as HTML. */
(function () {
  "use strict";

  function $(selector) { return document.querySelector(selector); }

  /* a new element; text (any value, shown as text) only where it is given */
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function show(node, visible) { node.hidden = !visible; }

  /* an ISO date and time in the browser's locale ("Mar 3, 10:15"; withYear: "Mar 3, 2025, 10:15"),
   * "" for none, an unreadable one as it is */
  function when(iso, withYear) {
    if (!iso) return "";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return String(iso);
    var options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    if (withYear) options.year = "numeric";
    return date.toLocaleString(undefined, options);
  }

  /* the status line after a load: "<what> · updated 10:15:02" */
  function updated(syncLine, what) {
    syncLine.textContent = what + " · updated " +
      new Date().toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  /* a load that failed: the message in its alert, "Not updated" in the status line */
  function notUpdated(syncLine, alert, message) {
    alert.textContent = message;
    show(alert, true);
    syncLine.textContent = "Not updated";
  }

  /* the parts every staff page has (ui.css styles them), found by their classes */
  function parts() {
    return {
      syncLine: $(".ui-sync"), list: $(".ui-list"), empty: $(".ui-empty"), listError: $(".ui-side > .ui-error"),
      placeholder: $(".ui-placeholder"), detail: $(".ui-detail"), actionError: $(".ui-action-error")
    };
  }

  /* --- requests ------------------------------------------------------------------------------- */

  /* the logged-in user: a Promise of the /v1/auth/me body {user: {username, display_name, role,
   * permissions}, csrf_token}, asked once per page; not logged in, the browser goes to /login */
  var sessionPromise = null;
  function session() {
    if (!sessionPromise) {
      sessionPromise = fetch("/v1/auth/me", { headers: { "Accept": "application/json" } }).then(function (response) {
        if (response.status === 401) { toLogin(); return new Promise(function () {}); }
        if (!response.ok) throw new Error("The server answered " + response.status + ".");
        return response.json();
      });
      sessionPromise.catch(function () { sessionPromise = null; });
    }
    return sessionPromise;
  }

  function toLogin() {
    window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
  }

  /* a JSON request; resolves with the answer's JSON (null if it has none), rejects with an Error
   * whose message can be shown: the server's error.message, its status, or that it is unreachable.
   * Requests that change something carry the session's CSRF token; a 401 goes to the login page. */
  function call(method, url, body) {
    var options = { method: method, headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    var ready = method === "GET" || method === "HEAD" ? Promise.resolve(null) : session();
    return ready.then(function (me) {
      if (me && me.csrf_token) options.headers["X-CSRF-Token"] = me.csrf_token;
      return fetch(url, options).catch(function () {
        throw new Error("The server could not be reached. Check the connection and try again.");
      });
    }).then(function (response) {
      if (response.status === 401) { toLogin(); return new Promise(function () {}); }
      return response.json().catch(function () { return null; }).then(function (data) {
        if (!response.ok) {
          var message = data && data.error && data.error.message;
          throw new Error(message || "The server answered " + response.status + ".");
        }
        return data;
      });
    });
  }

  /* the console's pages, each with the permission it needs */
  var CONSOLE_PAGES = [
    { name: "desk", label: "Desk", href: "/desk", permission: "desk" },
    { name: "live", label: "Live", href: "/live", permission: "live" },
    { name: "review", label: "Review", href: "/review", permission: "review" },
    { name: "dashboard", label: "Dashboard", href: "/dashboard", permission: "dashboard" },
    { name: "campaigns", label: "Campaigns", href: "/campaigns", permission: "campaigns" },
    { name: "drafts", label: "E-mail drafts", href: "/email/drafts", permission: "email" }
  ];

  /* fills <nav class="ui-nav"> with the pages the user may open, who is logged in and a log-out
   * button. Resolves with the session; when the user may not open this page (permission), the
   * page's <main> is replaced by a notice saying so and the Promise rejects. */
  function consoleNav(active, permission) {
    return session().then(function (me) {
      var nav = $(".ui-nav");
      var allowed = me.user.permissions || [];
      if (nav) {
        nav.textContent = "";
        var links = el("ul", "ui-nav-links");
        CONSOLE_PAGES.forEach(function (pageInfo) {
          if (allowed.indexOf(pageInfo.permission) < 0) return;
          var item = el("li");
          var link = el("a", null, pageInfo.label);
          link.href = pageInfo.href;
          if (pageInfo.name === active) link.setAttribute("aria-current", "page");
          item.appendChild(link);
          links.appendChild(item);
        });
        nav.appendChild(links);
        var who = el("span", "ui-nav-user", me.user.display_name + " · " + me.user.role);
        who.setAttribute("data-testid", "ui-user");
        nav.appendChild(who);
        var out = el("button", "ui-button ui-nav-logout", "Log out");
        out.type = "button";
        out.addEventListener("click", function () {
          fetch("/v1/auth/logout", { method: "POST", headers: { "X-CSRF-Token": me.csrf_token } })
            .finally(function () { window.location.assign("/login"); });
        });
        nav.appendChild(out);
      }
      if (permission && allowed.indexOf(permission) < 0) {
        var notice = el("main", "ui-main ui-refused");
        notice.setAttribute("data-testid", "ui-refused");
        notice.appendChild(el("h2", null, "Not allowed"));
        notice.appendChild(el("p", null, "Your role (" + me.user.role + ") may not open this page. " +
          "Ask an administrator if you need it."));
        var layout = $(".ui-layout") || $("main");
        if (layout) layout.replaceWith(notice); else document.body.appendChild(notice);
        throw new Error("not allowed");
      }
      return me;
    });
  }

  /* the console's live feed (WebSocket /v1/live): onEvent(topic, data) for each event; reconnects
   * after a drop (onState("open"|"closed") reports it, e.g. to reload what may have been missed) */
  function liveFeed(topics, onEvent, onState) {
    var socket = null, stopped = false, delay = 500;
    function open() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + window.location.host + "/v1/live?topics=" + encodeURIComponent(topics.join(",")));
      socket.onmessage = function (message) {
        var frame;
        try { frame = JSON.parse(message.data); } catch (e) { return; }
        if (frame.type === "ready") { delay = 500; if (onState) onState("open"); }
        else if (frame.type === "event") onEvent(frame.topic, frame.data, frame.at);
        else if (frame.type === "lagged" && onState) onState("lagged");
      };
      socket.onclose = function (event) {
        if (onState) onState("closed", event.code);
        if (event.code === 4401) { toLogin(); return; }
        if (stopped || event.code === 4403) return;
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    open();
    return { close: function () { stopped = true; if (socket) socket.close(); } };
  }

  /* --- the list and the selected entry -------------------------------------------------------- */

  /* a status badge: classes "ui-badge <prefix><status>", its label (or the status as it is) as
   * text; the given node made over, or a new <span> */
  function badge(status, labels, prefix, node) {
    node = node || el("span");
    node.className = "ui-badge " + prefix + status;
    node.textContent = labels[status] || status;
    return node;
  }

  /* one entry of a page's list, appended to it: <li><button class="ui-item ..."> with the entry's id
   * in the attribute idAttribute, aria-current if it is the selected one, and a top line of its
   * name (class nameClass) and the badge; returns the button, for the page to add its lines */
  function listItem(list, entry) {
    var item = el("li");
    var button = el("button", "ui-item " + entry.className);
    button.type = "button";
    button.setAttribute(entry.idAttribute, entry.id);
    if (entry.current) button.setAttribute("aria-current", "true");
    var top = el("span", "ui-item-top");
    top.appendChild(el("span", entry.nameClass, entry.name));
    top.appendChild(entry.badge);
    button.appendChild(top);
    button.addEventListener("click", entry.onSelect);
    item.appendChild(button);
    list.appendChild(item);
    return button;
  }

  /* aria-current on the list's entry whose idAttribute is id, off on the others */
  function markCurrent(list, idAttribute, id) {
    Array.prototype.forEach.call(list.querySelectorAll("[" + idAttribute + "]"), function (b) {
      if (b.getAttribute(idAttribute) === id) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    });
  }

  /* --- actions ------------------------------------------------------------------------------- */

  /* one of the page's actions: its two message lines (action.confirm, action.error) hidden, then
   * action.request() made; done, what action.confirmed(answer) says is shown in the confirm line,
   * failed, action.failed and the reason in the error line. action.state.lastError is the reason
   * or null. Resolves with whether it was done; never rejects. */
  function perform(action) {
    show(action.error, false);
    show(action.confirm, false);
    return action.request().then(function (answer) {
      action.state.lastError = null;
      action.confirm.textContent = action.confirmed(answer);
      show(action.confirm, true);
      return true;
    }).catch(function (err) {
      action.state.lastError = err.message;
      action.error.textContent = action.failed + err.message;
      show(action.error, true);
      return false;
    });
  }

  window.ui = {
    $: $, el: el, show: show, parts: parts, when: when, updated: updated, notUpdated: notUpdated, call: call,
    badge: badge, listItem: listItem, markCurrent: markCurrent, perform: perform,
    session: session, consoleNav: consoleNav, liveFeed: liveFeed
  };
})();
