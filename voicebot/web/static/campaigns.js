/* voicebot campaigns page: operators follow and control outbound calling campaigns.
 * The list (with each campaign's progress) comes from GET /v1/campaigns and is refreshed every
 * REFRESH_MS together with the selected campaign's contacts (GET /v1/campaigns/{id}/results, the
 * first CONTACT_LIMIT). Start, pause, resume and stop are POST /v1/campaigns/{id}/{action}, offered
 * only where the campaign's status allows them; a new campaign is POST /v1/campaigns with the text
 * of the chosen campaign file and contacts CSV. Every piece of data is put on the page as text
 * (textContent), never as HTML. The selected campaign is kept in the URL's #fragment.
 * window.vbCampaigns exposes the page's state (used by the browser tests). The helpers shared with
 * the other staff pages (requests, elements, dates) are window.ui (ui.js). */
(function () {
  "use strict";
  var REFRESH_MS = 2000;
  var CONTACT_LIMIT = 500;
  // the moves CampaignStatus allows, as the actions that make them (resume: only from paused)
  var ACTIONS = { draft: ["start", "stop"], running: ["pause", "stop"], paused: ["resume", "stop"] };
  var DONE = {
    start: "Started: due contacts are called within the calling window.",
    pause: "Paused: no new calls are placed.",
    resume: "Resumed: calling goes on.",
    stop: "Stopped for good."
  };
  var STATUS_LABELS = {
    draft: "Draft", running: "Running", paused: "Paused", stopped: "Stopped", completed: "Completed"
  };
  var CONTACT_STATUSES = ["pending", "calling", "done"];

  var $ = ui.$, el = ui.el, show = ui.show, call = ui.call, when = ui.when;
  var page = ui.parts();
  var syncLine = page.syncLine, list = page.list, empty = page.empty, listError = page.listError,
    placeholder = page.placeholder, detail = page.detail, actionError = page.actionError;
  var actionButtons = document.querySelectorAll(".cp-action");
  var confirmLine = $(".cp-confirm");

  var state = window.vbCampaigns = {
    campaigns: [], selected: null, contacts: [], busy: false, idle: false, loads: 0, lastError: null
  };
  var refreshing = null, again = false, contactsRequest = 0;

  function label(code) { return String(code).replace(/_/g, " "); }

  function progress(campaign) {
    var counts = campaign.contacts || {};
    var total = 0;
    Object.keys(counts).forEach(function (k) { total += counts[k]; });
    return { total: total, ended: counts.done || 0 };
  }

  function progressText(campaign) {
    var p = progress(campaign);
    var percent = p.total ? Math.floor((100 * p.ended) / p.total) : 0;
    return p.ended + " of " + p.total + " contacts ended (" + percent + "%)";
  }

  function countsText(campaign) {
    var counts = campaign.contacts || {};
    return CONTACT_STATUSES.map(function (s) { return s + " " + (counts[s] || 0); }).join(" · ");
  }

  function bar(campaign, name) {
    var p = progress(campaign);
    var node = el("progress");
    node.max = Math.max(p.total, 1);
    node.value = p.ended;
    node.setAttribute("aria-label", name);
    return node;
  }

  function campaignUrl(id) { return "/v1/campaigns/" + encodeURIComponent(id); }

  /* --- the list ------------------------------------------------------------------------------- */

  /* one refresh at a time; one asked for meanwhile runs right after (e.g. after an action) */
  function refresh() {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    state.idle = false;
    refreshing = load().then(function () {
      refreshing = null;
      state.idle = !again;
      if (again) {
        again = false;
        return refresh();
      }
    });
    return refreshing;
  }

  function load() {
    return call("GET", "/v1/campaigns").then(function (data) {
      state.campaigns = (data && data.campaigns) || [];
      state.loads += 1;
      show(listError, false);
      renderList();
      ui.updated(syncLine, state.campaigns.length + " campaign" + (state.campaigns.length === 1 ? "" : "s"));
      return renderSelected();
    }).catch(function (err) {
      ui.notUpdated(syncLine, listError, "The campaigns could not be loaded: " + err.message);
    });
  }

  function renderList() {
    list.textContent = "";
    state.campaigns.forEach(function (campaign) {
      var button = ui.listItem(list, {
        className: "cp-item", idAttribute: "data-campaign-id", id: campaign.id,
        current: campaign.id === state.selected, nameClass: "cp-item-name", name: campaign.name,
        badge: badge(campaign.status), onSelect: function () { select(campaign.id); }
      });
      button.appendChild(el("span", "cp-item-meta", label(campaign.kind) + " · " + progressText(campaign)));
      button.appendChild(bar(campaign, "Progress of " + campaign.name));
      button.appendChild(el("span", "cp-item-meta", countsText(campaign)));
    });
    show(empty, state.campaigns.length === 0);
  }

  function badge(status, node) { return ui.badge(status, STATUS_LABELS, "cp-badge-", node); }

  /* --- one campaign --------------------------------------------------------------------------- */

  function selected() {
    for (var i = 0; i < state.campaigns.length; i++) {
      if (state.campaigns[i].id === state.selected) return state.campaigns[i];
    }
    return null;
  }

  function select(id) {
    state.selected = id;
    if (window.location.hash !== "#" + id) window.location.hash = id;
    ui.markCurrent(list, "data-campaign-id", id);
    show(actionError, false);
    show(confirmLine, false);
    state.contacts = [];
    $(".cp-table tbody").textContent = "";
    return renderSelected();
  }

  function renderSelected() {
    var campaign = selected();
    if (!campaign) {
      show(detail, false);
      placeholder.textContent = state.selected
        ? "Campaign " + state.selected + " does not exist."
        : "Select a campaign to see its progress.";
      show(placeholder, true);
      return Promise.resolve();
    }
    show(placeholder, false);
    show(detail, true);
    $(".cp-title").textContent = campaign.name;
    badge(campaign.status, $("[data-testid=cp-status]"));
    $(".cp-kind").textContent = label(campaign.kind);
    var p = progress(campaign);
    var meter = $(".cp-progress");
    meter.max = Math.max(p.total, 1);
    meter.value = p.ended;
    $(".cp-progress-text").textContent = progressText(campaign);
    var byStatus = {};
    CONTACT_STATUSES.forEach(function (s) { byStatus[s] = (campaign.contacts || {})[s] || 0; });
    definitions($("[data-testid=cp-contact-counts]"), byStatus, "");
    definitions($("[data-testid=cp-outcome-counts]"), campaign.outcomes || {}, "None yet");
    var allowed = ACTIONS[campaign.status] || [];
    Array.prototype.forEach.call(actionButtons, function (button) {
      button.disabled = state.busy || allowed.indexOf(button.getAttribute("data-action")) < 0;
    });
    $(".cp-download").href = campaignUrl(campaign.id) + "/results?format=csv";
    return loadContacts(campaign, p.total);
  }

  function definitions(box, counts, none) {
    box.textContent = "";
    var keys = Object.keys(counts);
    if (!keys.length) box.appendChild(el("dt", null, none));
    keys.forEach(function (key) {
      box.appendChild(el("dt", null, label(key)));
      var value = el("dd", null, counts[key]);
      value.setAttribute("data-count", key);
      box.appendChild(value);
    });
  }

  function loadContacts(campaign, total) {
    var mine = ++contactsRequest;
    return call("GET", campaignUrl(campaign.id) + "/results?format=json&limit=" + CONTACT_LIMIT)
      .then(function (data) {
        if (mine !== contactsRequest || campaign.id !== state.selected) return;
        state.contacts = (data && data.contacts) || [];
        renderContacts(total);
      }).catch(function (err) {
        if (mine !== contactsRequest) return;
        var note = $("[data-testid=cp-contacts-note]");
        note.textContent = "The contacts could not be loaded: " + err.message;
        show(note, true);
      });
  }

  function renderContacts(total) {
    var body = $(".cp-table tbody");
    body.textContent = "";
    state.contacts.forEach(function (c) {
      var row = el("tr");
      row.appendChild(el("td", null, c.phone));
      row.appendChild(el("td", "cp-wrap", c.name || ""));
      row.appendChild(el("td", null, c.status));
      row.appendChild(el("td", "cp-num", c.attempts));
      row.appendChild(el("td", null, c.outcome ? label(c.outcome) : ""));
      row.appendChild(el("td", null, when(c.next_due_at)));
      body.appendChild(row);
    });
    var note = $("[data-testid=cp-contacts-note]");
    note.textContent = total > state.contacts.length
      ? "Showing the first " + state.contacts.length + " of " + total + " contacts; the CSV has them all."
      : "";
    show(note, total > state.contacts.length);
  }

  /* --- control -------------------------------------------------------------------------------- */

  function act(action) {
    var campaign = selected();
    if (!campaign || state.busy) return;
    if (action === "stop" && !window.confirm("Stop \u201c" + campaign.name + "\u201d for good? " +
        "A stopped campaign cannot be started again.")) return;
    state.busy = true;
    Array.prototype.forEach.call(actionButtons, function (b) { b.disabled = true; });
    ui.perform({
      state: state, confirm: confirmLine, error: actionError,
      request: function () { return call("POST", campaignUrl(campaign.id) + "/" + action); },
      confirmed: function () { return DONE[action]; },
      failed: "Not done: "
    }).then(function () {
      state.busy = false;
      return refresh();
    });
  }

  Array.prototype.forEach.call(actionButtons, function (button) {
    button.addEventListener("click", function () { act(button.getAttribute("data-action")); });
  });

  /* --- a new campaign ------------------------------------------------------------------------- */

  var form = $(".cp-form");
  var createButton = $(".cp-create");
  var createError = $("[data-testid=cp-create-error]");
  var created = $(".cp-created");

  function fileText(input, what) {
    var file = input.files && input.files[0];
    if (!file) return Promise.reject(new Error("Choose the " + what + "."));
    return file.text();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    show(createError, false);
    show(created, false);
    createButton.disabled = true;
    Promise.all([
      fileText($("#cp-definition"), "campaign file"), fileText($("#cp-contacts"), "contacts CSV")
    ]).then(function (texts) {
      var body = { definition: texts[0], contacts_csv: texts[1], region: $("#cp-region").value.trim() || "SI" };
      var name = $("#cp-name").value.trim();
      if (name) body.name = name;
      return call("POST", "/v1/campaigns", body);
    }).then(function (campaign) {
      var p = progress(campaign);
      $(".cp-created-line").textContent = "Created \u201c" + campaign.name + "\u201d: " + p.total +
        " contact" + (p.total === 1 ? "" : "s") + " imported" +
        (campaign.errors.length ? ", " + campaign.errors.length + " rows skipped:" : ".");
      var rows = $(".cp-rows");
      rows.textContent = "";
      campaign.errors.concat(campaign.notes).forEach(function (e) {
        rows.appendChild(el("li", null, "line " + e.line + ": " + e.message));
      });
      show(created, true);
      form.reset();
      state.selected = campaign.id;
      return refresh().then(function () { return select(campaign.id); });
    }).catch(function (err) {
      createError.textContent = "Not created: " + err.message;
      show(createError, true);
    }).then(function () { createButton.disabled = false; });
  });

  window.addEventListener("hashchange", function () {
    var id = decodeURIComponent(window.location.hash.slice(1));
    if (id && id !== state.selected) select(id);
  });

  state.selected = decodeURIComponent(window.location.hash.slice(1)) || null;
  ui.consoleNav("campaigns", "campaigns").then(function () {
    refresh();
    setInterval(function () { if (!document.hidden) refresh(); }, REFRESH_MS);
  }).catch(function () { /* not allowed: the page says so */ });
})();
