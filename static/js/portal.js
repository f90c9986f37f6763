// Employee picker: fills the shared datalist from the people search as the user types.
// The field also works without JavaScript: it accepts a personnel number.
(function () {
  "use strict";
  var timer = null;
  function fill(list, results) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    results.forEach(function (person) {
      var option = document.createElement("option");
      option.value = person.label;
      option.textContent = person.department;
      list.appendChild(option);
    });
  }
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[data-person-picker]")) { return; }
    var list = document.getElementById(input.getAttribute("list"));
    var query = input.value.trim();
    if (!list || query.length < 2) { return; }
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(input.getAttribute("data-person-picker") + "?q=" + encodeURIComponent(query), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { results: [] }; })
        .then(function (data) { fill(list, data.results || []); })
        .catch(function () { /* keep typing by number */ });
    }, 200);
  });
})();

// After a failed post, move focus to the error summary so keyboard and screen-reader
// users start at the list of errors (its links lead to the fields).
(function () {
  "use strict";
  function focusErrors() {
    var summary = document.querySelector(".error-summary");
    if (!summary) { return; }
    summary.setAttribute("tabindex", "-1");
    summary.focus();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusErrors);
  } else {
    focusErrors();
  }
})();

// Catalogue search: results while typing. The page is fetched as without JavaScript (the form
// still submits normally) and only its results region is swapped; the URL follows the query.
(function () {
  "use strict";
  var timer = null;
  var latest = 0;
  document.addEventListener("input", function (event) {
    var input = event.target;
    var form = input.form;
    if (!form || input.name !== "q" || !form.hasAttribute("data-live-search")) { return; }
    var target = document.getElementById(form.getAttribute("data-live-search"));
    if (!target) { return; }
    clearTimeout(timer);
    timer = setTimeout(function () {
      var query = input.value.trim();
      var url = form.getAttribute("action") || window.location.pathname;
      url += query ? "?q=" + encodeURIComponent(query) : "";
      var ticket = ++latest;
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null || ticket !== latest) { return; }  // a newer query is on its way
          var page = new DOMParser().parseFromString(html, "text/html");
          var fresh = page.getElementById(target.id);
          if (!fresh) { return; }
          target.replaceChildren.apply(target, Array.prototype.slice.call(fresh.childNodes));
          window.history.replaceState(null, "", url);
        })
        .catch(function () { /* the search button still works */ });
    }, 250);
  });
})();

// Header menu on small screens: the button folds the menu away and opens it again. Without
// JavaScript the button stays hidden and the menu open, so every link is still reachable.
(function () {
  "use strict";
  var header = document.querySelector(".site-header");
  var button = header && header.querySelector(".menu-button");
  var menu = document.getElementById("site-menu");
  if (!button || !menu) { return; }
  function set(open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    menu.classList.toggle("closed", !open);
  }
  button.hidden = false;
  header.classList.add("menu-ready");
  set(false);
  button.addEventListener("click", function () {
    set(button.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true" &&
        getComputedStyle(button).display !== "none") {
      set(false);
      button.focus();
    }
  });
})();

// Length limits: the field stops taking characters at its maximum (maxlength), so the count
// of what is used is shown beside it instead of cutting text off without a word.
(function () {
  "use strict";
  document.querySelectorAll(".char-count[data-for]").forEach(function (counter) {
    var input = document.getElementById(counter.getAttribute("data-for"));
    if (!input) { return; }
    // Read out with the field, after its help: how much room is left.
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (counter.id && described.indexOf(counter.id) < 0) {
      described.push(counter.id);
      input.setAttribute("aria-describedby", described.join(" "));
    }
    function update() {
      counter.textContent = counter.getAttribute("data-used").replace("__COUNT__", String(input.value.length));
    }
    input.addEventListener("input", update);
    update();
  });
})();

// Wide tables: a table container that must scroll sideways (a table wider than the screen,
// e.g. on a phone) becomes a focusable region named by its table's caption, so it can be
// scrolled with the keyboard (WCAG 2.1.1). Containers that fit stay as they are.
(function () {
  "use strict";
  function mark() {
    document.querySelectorAll(".table-container:not([tabindex])").forEach(function (box) {
      if (box.scrollWidth <= box.clientWidth + 1) { return; }
      box.setAttribute("tabindex", "0");
      if (!box.hasAttribute("role")) { box.setAttribute("role", "region"); }
      if (!box.hasAttribute("aria-label") && !box.hasAttribute("aria-labelledby")) {
        // Named by the table's caption, else by the section's heading, else by the page.
        var caption = box.querySelector("caption");
        var section = box.closest("[aria-labelledby]");
        if (caption && caption.textContent.trim()) {
          box.setAttribute("aria-label", caption.textContent.trim());
        } else if (section) {
          box.setAttribute("aria-labelledby", section.getAttribute("aria-labelledby"));
        } else {
          box.setAttribute("aria-label", document.title);
        }
      }
    });
  }
  var timer = null;
  window.addEventListener("resize", function () { clearTimeout(timer); timer = setTimeout(mark, 200); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mark);
  } else {
    mark();
  }
})();
