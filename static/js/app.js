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
  });
})();
