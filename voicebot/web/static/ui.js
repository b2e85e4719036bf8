/* voicebot staff pages' shared helpers (the e-mail drafts and the campaigns page), as window.ui.
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

  /* a JSON request; resolves with the answer's JSON (null if it has none), rejects with an Error
   * whose message can be shown: the server's error.message, its status, or that it is unreachable */
  function call(method, url, body) {
    var options = { method: method, headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).catch(function () {
      throw new Error("The server could not be reached. Check the connection and try again.");
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (!response.ok) {
          var message = data && data.error && data.error.message;
          throw new Error(message || "The server answered " + response.status + ".");
        }
        return data;
      });
    });
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
    badge: badge, listItem: listItem, markCurrent: markCurrent, perform: perform
  };
})();
