/* The check-in dialog (templates/ops/includes/checkin_dialog.html): it opens when a row's "Log status"
   brings its form, and closes when the status is logged; focus returns to the row's link. */
(function () {
  "use strict";

  function focusFirst(dialog) {
    var target = dialog.querySelector("[aria-invalid=true], .errorlist ~ * input, textarea, input:not([type=hidden]), select");
    if (target) target.focus();
  }

  var handled = new WeakSet(); /* htmx fires afterSettle once per swapped element (out-of-band ones too) */

  document.addEventListener("htmx:afterSettle", function (event) {
    var body = event.detail.target;
    if (!body || body.id !== "checkin-body" || handled.has(event.detail.xhr)) return;
    handled.add(event.detail.xhr);
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
