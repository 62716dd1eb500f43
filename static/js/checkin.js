/* The check-in dialog (templates/ops/includes/checkin_dialog.html): it opens when a row's "Log status"
   brings its form, and closes when the status is logged; focus returns to the row's link. */
(function () {
  "use strict";

  function focusFirst(dialog) {
    var target = dialog.querySelector("[aria-invalid=true], .errorlist ~ * input, textarea, input:not([type=hidden]), select");
    if (target) target.focus();
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var body = event.detail.target;
    if (!body || body.id !== "checkin-body") return;
    var dialog = document.getElementById("checkin");
    var done = body.querySelector("[data-checkin-done]");
    if (done) {
      var focus = done.dataset.focus;
      dialog.close();
      body.innerHTML = "";
      var link = document.getElementById(focus);
      if (link) link.focus();
      return;
    }
    if (!dialog.open) dialog.showModal();
    focusFirst(dialog);
  });
})();
