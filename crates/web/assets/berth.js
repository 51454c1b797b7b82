// Berth's pages work without this script; it adds what helps in a browser:
// copy buttons, confirmation of dangerous forms, and type-the-name confirmations.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    event.preventDefault();
    var text = button.getAttribute("data-copy");
    var done = function () {
      var label = button.querySelector("[data-copy-label]") || button;
      var before = label.textContent;
      label.textContent = "Copied!";
      button.setAttribute("aria-label", "Copied!");
      setTimeout(function () { label.textContent = before; button.setAttribute("aria-label", "Copy to clipboard"); }, 2000);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else { fallback(text); done(); }
  });
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    document.body.removeChild(area);
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
  // A form with data-confirm-name keeps its submit button disabled until the field
  // [data-confirm-input] holds that name (the server checks it again).
  function watch(form) {
    var input = form.querySelector("[data-confirm-input]");
    var button = form.querySelector("button[type=submit]");
    if (!input || !button) return;
    var update = function () { button.disabled = input.value !== form.getAttribute("data-confirm-name"); };
    input.addEventListener("input", update);
    update();
  }
  document.querySelectorAll("form[data-confirm-name]").forEach(watch);
})();
