/* The KPI dashboard: GET /v1/dashboard drawn as tiles, Chart.js charts and tables; reloaded on the
 * console's live events (debounced) and on a timer. Text goes on the page as textContent only. */
(function () {
  "use strict";
  var ui = window.ui;
  var $ = ui.$;
  var LIVE_DEBOUNCE_MS = 2000;
  var TIMER_MS = 60000;
  var COLORS = ["#1f5eff", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0c8599", "#5c940d", "#862e9c"];

  /* --- numbers as people read them ------------------------------------------------------------ */
  function count(n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"); }
  function pct(r) { return r === null || r === undefined ? "—" : (r * 100).toFixed(1) + " %"; }
  function ms(x) {
    if (x === null || x === undefined) return "—";
    return x < 1000 ? Math.round(x) + " ms" : (x / 1000).toFixed(2) + " s";
  }
  function duration(x) {
    if (x === null || x === undefined) return "—";
    if (x < 60000) return (x / 1000).toFixed(1) + " s";
    if (x < 3600000) return (x / 60000).toFixed(1) + " min";
    return (x / 3600000).toFixed(1) + " h";
  }
  function score(x) { return x === null || x === undefined ? "—" : x.toFixed(2) + " / 5"; }

  /* the tiles: [key, label, value (raw), its text, the note under it] */
  function tiles(b) {
    return [
      ["conversations", "Conversations", b.conversations, count(b.conversations), count(b.answered) + " answered by the bot"],
      ["first-response", "First response (p50)", b.first_response_ms.p50, ms(b.first_response_ms.p50),
        "p95 " + ms(b.first_response_ms.p95)],
      ["csat", "CSAT", b.csat.average, score(b.csat.average), count(b.csat.responses) + " answers"],
      ["deflection", "Deflection", b.deflection_rate, pct(b.deflection_rate), "resolved without a person"],
      ["handoff", "Handoff rate", b.handoff_rate, pct(b.handoff_rate), count(b.handoffs) + " handoffs"],
      ["fcr", "First-contact resolution", b.first_contact_resolution.rate, pct(b.first_contact_resolution.rate),
        count(b.first_contact_resolution.came_back) + " of " + count(b.first_contact_resolution.closed) + " came back"],
      ["bot-handle", "Handle time, bot", b.handle_ms.bot_average, duration(b.handle_ms.bot_average),
        count(b.handle_ms.bot_conversations) + " conversations"],
      ["human-handle", "Handle time, agents", b.handle_ms.human_average, duration(b.handle_ms.human_average),
        count(b.handle_ms.human_handoffs) + " handoffs closed"],
      ["voice-latency", "Voice-to-voice (p50)", b.voice_latency_ms.p50, ms(b.voice_latency_ms.p50),
        "p95 " + ms(b.voice_latency_ms.p95) + " · " + count(b.voice_latency_ms.turns) + " turns"]
    ];
  }

  function drawTiles(b) {
    var box = $(".db-tiles");
    box.textContent = "";
    tiles(b).forEach(function (t) {
      var tile = ui.el("div", "db-tile");
      tile.setAttribute("data-testid", "db-" + t[0]);
      tile.appendChild(ui.el("span", "db-tile-label", t[1]));
      var value = ui.el("span", "db-tile-value", t[3]);
      value.setAttribute("data-testid", "db-" + t[0] + "-value");
      value.setAttribute("data-value", JSON.stringify(t[2] === undefined ? null : t[2]));
      tile.appendChild(value);
      tile.appendChild(ui.el("span", "db-tile-note", t[4]));
      box.appendChild(tile);
    });
  }

  /* --- tables ------------------------------------------------------------------------------------ */
  var COLUMNS = [
    ["Conversations", function (s) { return count(s.conversations); }],
    ["First resp. p50", function (s) { return ms(s.first_response_ms.p50); }],
    ["p95", function (s) { return ms(s.first_response_ms.p95); }],
    ["CSAT", function (s) { return score(s.csat.average); }],
    ["Deflection", function (s) { return pct(s.deflection_rate); }],
    ["Handoffs", function (s) { return pct(s.handoff_rate); }],
    ["FCR", function (s) { return pct(s.first_contact_resolution.rate); }],
    ["Bot handle", function (s) { return duration(s.handle_ms.bot_average); }],
    ["Agent handle", function (s) { return duration(s.handle_ms.human_average); }],
    ["Voice p50", function (s) { return ms(s.voice_latency_ms.p50); }],
    ["Voice p95", function (s) { return ms(s.voice_latency_ms.p95); }]
  ];

  function drawTable(table, first, slices) {
    table.textContent = "";
    var head = ui.el("thead"), row = ui.el("tr");
    row.appendChild(ui.el("th", null, first));
    COLUMNS.forEach(function (c) { row.appendChild(ui.el("th", null, c[0])); });
    head.appendChild(row);
    table.appendChild(head);
    var body = ui.el("tbody");
    var names = Object.keys(slices).sort(function (a, b) { return slices[b].conversations - slices[a].conversations; });
    names.forEach(function (name) {
      var tr = ui.el("tr");
      tr.setAttribute("data-key", name);
      tr.appendChild(ui.el("td", null, name));
      COLUMNS.forEach(function (c) { tr.appendChild(ui.el("td", null, c[1](slices[name]))); });
      body.appendChild(tr);
    });
    if (!names.length) {
      var empty = ui.el("tr"), cell = ui.el("td", "ui-muted", "No conversations in this range.");
      cell.colSpan = COLUMNS.length + 1;
      empty.appendChild(cell);
      body.appendChild(empty);
    }
    table.appendChild(body);
  }

  /* --- charts ------------------------------------------------------------------------------------ */
  var charts = {};

  function label(iso, bucket) {
    var d = new Date(iso);
    if (bucket === "hour") return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    var day = d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
    return bucket === "week" ? "wk of " + day : day;
  }

  function line(name, unit, sets) {
    return {
      type: "line",
      data: { labels: [], datasets: sets.map(function (s, i) {
        return { label: s, data: [], borderColor: COLORS[i], backgroundColor: COLORS[i], spanGaps: true, tension: 0, pointRadius: 2 };
      }) },
      options: { responsive: true, maintainAspectRatio: false, animation: false, interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, title: { display: !!unit, text: unit } } } }
    };
  }

  function bar(sets) {
    return {
      type: "bar",
      data: { labels: [], datasets: sets.map(function (s, i) { return { label: s, data: [], backgroundColor: COLORS[i] }; }) },
      options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    };
  }

  function makeCharts() {
    if (typeof window.Chart !== "function") {
      var note = $("[data-testid=db-nochart]");
      note.textContent = "Charts are unavailable: the charting library (Chart.js) is not installed on the server. " +
        "Run scripts/setup there (it runs npm ci --prefix voicebot/web/vendor).";
      ui.show(note, true);
      return false;
    }
    var specs = {
      volume: line("volume", "", ["Conversations", "Handoffs"]),
      times: line("times", "ms", ["First response p50", "First response p95", "Voice-to-voice p50", "Voice-to-voice p95"]),
      rates: line("rates", "%", ["Deflection", "Handoff rate", "First-contact resolution"]),
      reasons: bar(["Handoffs"]),
      csat: bar(["Answers"])
    };
    Object.keys(specs).forEach(function (name) {
      charts[name] = new window.Chart($("[data-testid=db-chart-" + name + "]"), specs[name]);
    });
    return true;
  }

  function setChart(name, labels, columns) {
    var chart = charts[name];
    if (!chart) return;
    chart.data.labels = labels;
    columns.forEach(function (values, i) { chart.data.datasets[i].data = values; });
    chart.update("none");
  }

  function drawCharts(b) {
    var s = b.series, bucket = b.range.bucket;
    var labels = s.map(function (p) { return label(p.start, bucket); });
    function of(f) { return s.map(function (p) { var v = f(p); return v === null || v === undefined ? null : v; }); }
    function percent(f) { return of(function (p) { var v = f(p); return v === null ? null : Math.round(v * 1000) / 10; }); }
    setChart("volume", labels, [of(function (p) { return p.conversations; }), of(function (p) { return p.handoffs; })]);
    setChart("times", labels, [
      of(function (p) { return p.first_response_ms.p50; }), of(function (p) { return p.first_response_ms.p95; }),
      of(function (p) { return p.voice_latency_ms.p50; }), of(function (p) { return p.voice_latency_ms.p95; })
    ]);
    setChart("rates", labels, [
      percent(function (p) { return p.deflection_rate; }), percent(function (p) { return p.handoff_rate; }),
      percent(function (p) { return p.first_contact_resolution.rate; })
    ]);
    var reasons = Object.keys(b.handoff_reasons);
    setChart("reasons", reasons.map(function (r) { return r.replace(/_/g, " "); }),
      [reasons.map(function (r) { return b.handoff_reasons[r]; })]);
    var scores = ["1", "2", "3", "4", "5"];
    setChart("csat", scores, [scores.map(function (k) { return b.csat.distribution[k]; })]);
  }

  /* --- loading ----------------------------------------------------------------------------------- */
  function query() {
    var params = new URLSearchParams();
    var range = $("#db-range").value;
    if (range === "custom") {
      if ($("#db-since").value) params.set("since", $("#db-since").value);
      if ($("#db-until").value) params.set("until", $("#db-until").value);
    } else {
      params.set("since", new Date(Date.now() - Number(range) * 86400000).toISOString());
    }
    if ($("#db-channel").value) params.set("channel", $("#db-channel").value);
    if ($("#db-bucket").value) params.set("bucket", $("#db-bucket").value);
    return "/v1/dashboard?" + params.toString();
  }

  var loading = false, again = false;
  function load() {
    if (loading) { again = true; return; }
    loading = true;
    var syncLine = $(".ui-sync"), alert = $("[data-testid=db-error]");
    ui.call("GET", query()).then(function (b) {
      ui.show(alert, false);
      drawTiles(b);
      drawCharts(b);
      drawTable($("[data-testid=db-channels]"), "Channel", b.per_channel);
      drawTable($("[data-testid=db-intents]"), "Intent", b.per_intent);
      document.body.setAttribute("data-loaded", b.range.since + "|" + b.range.until);
      ui.updated(syncLine, count(b.conversations) + " conversations since " + ui.when(b.range.since));
    }).catch(function (err) {
      ui.notUpdated(syncLine, alert, err.message);
    }).finally(function () {
      loading = false;
      if (again) { again = false; load(); }
    });
  }

  /* live events come in bursts (every turn of every conversation): reload once, ``wait`` ms after
   * the first event of a burst, so a busy day still reloads every few seconds, not on every turn */
  function debounce(f, wait) {
    var timer = null;
    return function () {
      if (timer === null) timer = setTimeout(function () { timer = null; f(); }, wait);
    };
  }

  ui.consoleNav("dashboard", "dashboard").then(function (me) {
    makeCharts();
    $("#db-range").addEventListener("change", function () {
      ui.show($("[data-testid=db-dates]"), $("#db-range").value === "custom");
      if ($("#db-range").value !== "custom") load();
    });
    $("#db-channel").addEventListener("change", load);
    $("#db-bucket").addEventListener("change", load);
    $("[data-testid=db-controls]").addEventListener("submit", function (event) { event.preventDefault(); load(); });
    load();
    var allowed = me.user.permissions || [];
    if (allowed.indexOf("live") >= 0 || allowed.indexOf("desk") >= 0) {
      ui.liveFeed(["conversation.", "handoff."], debounce(load, LIVE_DEBOUNCE_MS));
    }
    setInterval(load, TIMER_MS);
  }).catch(function () { /* not allowed: consoleNav shows why */ });
})();
