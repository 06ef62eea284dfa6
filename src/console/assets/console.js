// stripe-reconciler console: keyboard shortcuts and small comforts. Every page works
// without this file; it only adds:
//   N                 open "Create customer" (when not typing in a field)
//   Cmd/Ctrl+Enter    submit the form you are typing in
//   Escape            close the open sheet
//   data-confirm      ask before a destructive button submits
"use strict";

(function () {
  function typing(target) {
    return target && (target.isContentEditable ||
      ["INPUT", "TEXTAREA", "SELECT"].indexOf(target.tagName) >= 0);
  }

  function openSheet(details) {
    document.querySelectorAll("details.sheet[open]").forEach(function (d) {
      if (d !== details) d.open = false;
    });
    details.open = true;
    var field = details.querySelector("input:not([type=hidden]), select, textarea");
    if (field) field.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var open = document.querySelectorAll("details.sheet[open]");
      if (open.length) {
        open.forEach(function (d) { d.open = false; });
        event.preventDefault();
      }
      return;
    }
    if (event.key === "Enter" && (event.metaKey || event.ctrlKey)) {
      var form = event.target && event.target.closest ? event.target.closest("form") : null;
      if (form) {
        event.preventDefault();
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
      }
      return;
    }
    if ((event.key === "n" || event.key === "N") && !event.metaKey && !event.ctrlKey &&
        !event.altKey && !typing(event.target)) {
      var create = document.getElementById("create-customer");
      if (create) {
        event.preventDefault();
        openSheet(create);
      }
    }
  });

  // Opening a sheet focuses its first field and closes the others.
  document.addEventListener("toggle", function (event) {
    var d = event.target;
    if (d.matches && d.matches("details.sheet") && d.open) openSheet(d);
  }, true);

  // A click outside an open sheet closes it.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.sheet[open]").forEach(function (d) {
      if (!d.contains(event.target)) d.open = false;
    });
  });

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // The hand-off link of an outcome (a checkout URL) is selected for copying.
  document.querySelectorAll("#outcome input.copy").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
})();
