/* LLMOps Tracker behaviour. All script lives in static files (the CSP forbids inline script). */
(function () {
  "use strict";

  var SEVERITY = [[20, "critical"], [10, "high"], [5, "medium"], [1, "low"]];

  function severity(score) {
    for (var i = 0; i < SEVERITY.length; i++) {
      if (score >= SEVERITY[i][0]) return SEVERITY[i][1];
    }
    return "low";
  }

  function money(value) {
    return Number(value).toLocaleString(undefined, { maximumFractionDigits: 0 });
  }

  /* Charts: a <canvas data-chart="JSON"> carries its own series (htmx drops the <script>s of a swap). */
  function initCharts(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var data = JSON.parse(canvas.dataset.chart);
      var colours = ["#1d4ed8", "#b42318", "#1b7f3b", "#8a5a00", "#6d28d9", "#0e7490", "#be185d", "#4b5563"];
      canvas.dataset.drawn = "1";
      new Chart(canvas, {
        data: {
          labels: data.labels,
          datasets: data.series.map(function (s, i) {
            /* A series may name its colour (severities); otherwise the palette's, in turn. */
            var colour = s.colour || colours[i % colours.length];
            return {
              type: s.type || "bar",
              label: s.label,
              data: s.data,
              backgroundColor: s.type === "line" ? "transparent" : colour + "cc",
              borderColor: colour,
              borderWidth: s.type === "line" ? 2 : 0,
              pointRadius: s.type === "line" ? 2 : 0,
              stepped: s.type === "line" ? "middle" : false,
              order: s.type === "line" ? 0 : 1,
            };
          }),
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: "index", intersect: false },
          plugins: {
            legend: { position: "bottom" },
            tooltip: {
              callbacks: {
                label: function (ctx) { return ctx.dataset.label + ": " + money(ctx.parsed.y) + (data.unit ? " " + data.unit : ""); },
              },
            },
          },
          /* `stacked`: the bars of each label pile up (spend by model, risks by severity). */
          scales: {
            x: { stacked: !!data.stacked },
            y: { stacked: !!data.stacked, beginAtZero: true, ticks: { precision: 0, callback: function (v) { return money(v); } } },
          },
        },
      });
    });
  }

  /* Risk forms: show likelihood × impact and its severity band while the user chooses. */
  function initRiskScores(root) {
    root.querySelectorAll("[data-risk-score]").forEach(function (output) {
      var form = output.closest("form");
      var likelihood = form.querySelector("[name=likelihood]");
      var impact = form.querySelector("[name=impact]");
      function update() {
        var score = Number(likelihood.value) * Number(impact.value);
        var band = severity(score);
        output.textContent = "Score " + score + " · " + band.charAt(0).toUpperCase() + band.slice(1);
        output.dataset.severity = band;
      }
      likelihood.addEventListener("change", update);
      impact.addEventListener("change", update);
      update();
    });
  }

  /* A <select data-autosubmit> submits its form when changed (the button stays for keyboards without JS). */
  function initAutosubmit(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.requestSubmit(); });
    });
  }

  /* Copy buttons: <button data-copy="ID"> copies the text of element ID. */
  function initCopy(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = document.getElementById(button.dataset.copy).textContent.trim();
        navigator.clipboard.writeText(text).then(function () { button.textContent = "Copied"; });
      });
    });
  }

  /* Project-page forms: a <details data-form-url> loads its form when opened, then puts focus in it.
     A disclosure open from the start (nothing recorded yet) loads without taking the focus. */
  function initLazyForms(root) {
    root.querySelectorAll("details[data-form-url]").forEach(function (details) {
      var slot = details.querySelector("[data-form-slot]");
      var loading = null;
      function focusForm() {
        var field = slot.querySelector("input:not([type=hidden]), select, textarea, button");
        if (field) field.focus();
      }
      function load(focus) {
        if (slot.querySelector("form")) {
          if (focus) focusForm();
          return;
        }
        if (!loading) {
          loading = htmx.ajax("GET", details.dataset.formUrl, { source: details, target: slot, swap: "innerHTML" });
          loading.then(function () { loading = null; }, function () { loading = null; });
        }
        if (focus) loading.then(focusForm);
      }
      var initial = details.open;
      if (initial) load(false);
      details.addEventListener("toggle", function () {
        if (initial) { initial = false; return; } /* the toggle event of a disclosure open from the start */
        if (details.open) load(true);
      });
    });
  }

  /* Heat maps of links: one tab stop (the selected cell, else the first), arrow keys move between the
     cells that hold risks (Left/Right in reading order, Up/Down to the nearest cell of the next row). */
  function initHeatmaps(root) {
    root.querySelectorAll(".heatmap[data-roving]").forEach(function (map) {
      var cells = Array.prototype.slice.call(map.querySelectorAll("a.cell"));
      if (!cells.length) return;
      function rove(cell) {
        cells.forEach(function (c) { c.tabIndex = c === cell ? 0 : -1; });
      }
      function towards(cell, key) {
        var index = cells.indexOf(cell);
        if (key === "ArrowRight") return cells[index + 1];
        if (key === "ArrowLeft") return cells[index - 1];
        if (key === "Home") return cells[0];
        if (key === "End") return cells[cells.length - 1];
        var up = key === "ArrowUp" ? 1 : -1;
        var best = null, bestScore = 0;
        cells.forEach(function (c) {
          var rows = (Number(c.dataset.impact) - Number(cell.dataset.impact)) * up;
          if (rows <= 0) return;
          var score = rows * 10 + Math.abs(Number(c.dataset.likelihood) - Number(cell.dataset.likelihood));
          if (best === null || score < bestScore) { best = c; bestScore = score; }
        });
        return best;
      }
      rove(map.querySelector("a.cell.selected") || cells[0]);
      map.addEventListener("keydown", function (event) {
        if (["ArrowRight", "ArrowLeft", "ArrowUp", "ArrowDown", "Home", "End"].indexOf(event.key) < 0) return;
        var next = cells.indexOf(event.target) < 0 ? null : towards(event.target, event.key);
        event.preventDefault();
        if (!next) return;
        rove(next);
        next.focus();
      });
    });
  }

  /* The header on phones: the links and the account menu fold behind "Menu" (shown by the CSS at ≤ 600 px). */
  function initNav() {
    var toggle = document.querySelector(".nav-toggle");
    if (!toggle) return;
    var menu = document.getElementById(toggle.getAttribute("aria-controls"));
    toggle.hidden = false;
    toggle.closest(".topbar").classList.add("nav-folding");
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("open", open);
    });
  }

  /* Escape closes the open dropdown or folded menu it is in and gives the focus back to its button. */
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var dropdown = document.querySelector("details.dropdown[open]");
    if (dropdown) {
      dropdown.open = false;
      dropdown.querySelector("summary").focus();
      return;
    }
    var toggle = document.querySelector('.nav-toggle[aria-expanded="true"]');
    if (toggle) {
      toggle.click();
      toggle.focus();
    }
  });

  /* "Log status" near the top of a page: open the status form's disclosure (it loads and takes the focus). */
  function initOpenForm(root) {
    root.querySelectorAll("a[data-open-form]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var details = document.querySelector('details[data-testid="form-' + link.dataset.openForm + '"]');
        if (!details) return;
        event.preventDefault();
        details.scrollIntoView({ block: "start" });
        if (!details.open) details.open = true;
        else details.querySelector("summary").focus();
      });
    });
  }

  /* After a form sent by htmx (not a GET: filters keep the focus where the user types), move the focus to
     what answered: the first invalid field or form error, else the notice, else the heading of the part swapped in. */
  var focused = new WeakSet();
  document.addEventListener("htmx:afterSettle", function (event) {
    var detail = event.detail;
    if (!detail.requestConfig || detail.requestConfig.verb === "get" || !detail.xhr || focused.has(detail.xhr)) return;
    focused.add(detail.xhr);
    var target = detail.target;
    var root = target && document.contains(target) ? target : target && target.id ? document.getElementById(target.id) : null;
    if (!root) return;
    var spot = root.querySelector('[aria-invalid="true"], .errorlist.nonfield, .refused') ||
      root.querySelector('[role="status"], [role="alert"]') || root.querySelector("h1, h2, h3") || root;
    if (!spot.matches("input, select, textarea, button, a[href]") && !spot.hasAttribute("tabindex")) spot.tabIndex = -1;
    spot.focus();
  });

  function flash(message) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    window.setTimeout(function () { box.textContent = ""; }, 6000);
  }

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    flash(status === 403 ? "Your role does not allow this." : status === 404 ? "Not found." : "Something went wrong (" + status + "). Please try again.");
  });
  document.addEventListener("htmx:sendError", function () { flash("The server could not be reached."); });

  htmx.onLoad(function (root) {
    initCharts(root);
    initLazyForms(root);
    initRiskScores(root);
    initAutosubmit(root);
    initCopy(root);
    initHeatmaps(root);
    initOpenForm(root);
  });
  initNav();
})();
