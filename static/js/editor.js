// Catalogue editor: refreshes the order-form preview from the server while the admin types.
// Without JavaScript the "Update preview" button does the same with a full page.
(function () {
  "use strict";
  function start() {
    var form = document.querySelector("form[data-preview-url]");
    var target = document.getElementById("preview");
    if (!form || !target) { return; }
    var timer = null, running = 0;
    function refresh() {
      var ticket = ++running;
      fetch(form.getAttribute("data-preview-url"), {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" }
      })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null || ticket !== running) { return; }  // an older answer: drop it
          target.innerHTML = html;
          document.dispatchEvent(new CustomEvent("itportal:content-swapped"));
        })
        .catch(function () { /* the button still works */ });
    }
    function later() { clearTimeout(timer); timer = setTimeout(refresh, 300); }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
