// Conditional fields of an order form: shows, hides and marks as required in the browser what
// catalogue/conditions.py decides on the server (which judges the post; hidden answers are
// discarded there). The definitions come as JSON from the page (no inline script: strict CSP).
(function () {
  "use strict";
  var PERSON = /\(([^()]+)\)\s*$/;

  function isEmpty(value) {
    if (value === null || value === undefined || value === false) { return true; }
    if (typeof value === "string") { return value.trim() === ""; }
    if (Array.isArray(value)) { return value.length === 0; }
    return false;
  }

  function answerOf(form, field) {
    var inputs = form.querySelectorAll('[name="' + field.name + '"]');
    if (!inputs.length) { return null; }
    var first = inputs[0];
    if (field.type === "multiple_choice") {
      return Array.prototype.filter.call(inputs, function (i) { return i.checked; })
        .map(function (i) { return i.value; });
    }
    if (field.type === "yes_no") {
      if (first.type === "checkbox") { return first.checked; }
      return first.value === "yes" ? true : (first.value === "no" ? false : null);
    }
    var value = (first.value || "").trim();
    if (field.type === "person") {
      var match = PERSON.exec(value);
      return match ? match[1].trim() : value;
    }
    return value;
  }

  function scalarText(value) {
    if (value === true) { return "yes"; }
    if (value === false) { return "no"; }
    return String(value).trim();
  }

  function equal(answer, expected) {
    expected = expected.trim();
    if (Array.isArray(answer)) {
      return answer.some(function (v) { return String(v).trim() === expected; });
    }
    var text = scalarText(answer);
    if (text === expected) { return true; }
    var a = Number(text.replace(",", ".")), b = Number(expected);
    return text !== "" && expected !== "" && !isNaN(a) && !isNaN(b) && a === b;
  }

  function holds(condition, answer) {
    if (condition.operator === "is_set") { return !isEmpty(answer); }
    if (isEmpty(answer) && typeof answer !== "boolean") { return false; }
    if (condition.operator === "equals") {
      return condition.values.length > 0 && equal(answer, condition.values[0]);
    }
    if (condition.operator === "one_of") {
      return condition.values.some(function (v) { return equal(answer, v); });
    }
    return false;
  }

  function states(form, logic) {
    var byKey = {}, result = {}, resolving = {};
    logic.fields.forEach(function (f) { byKey[f.key] = f; });
    function state(key) {
      if (result[key]) { return result[key]; }
      var field = byKey[key], condition = field.condition, out;
      if (!condition) {
        out = { visible: true, required: field.required };
      } else {
        var ok = false;
        if (byKey[condition.field] && !resolving[key]) {
          resolving[key] = true;
          if (state(condition.field).visible) {
            ok = holds(condition, answerOf(form, byKey[condition.field]));
          }
          delete resolving[key];
        }
        out = condition.effect === "show"
          ? { visible: ok, required: ok && field.required }
          : { visible: true, required: ok };
      }
      result[key] = out;
      return out;
    }
    logic.fields.forEach(function (f) { state(f.key); });
    return result;
  }

  function markRequired(box, required, text) {
    var title = box.querySelector("legend, label");
    if (!title) { return; }
    var marker = title.querySelector(".required");
    if (required && !marker) {
      marker = document.createElement("span");
      marker.className = "required";
      marker.textContent = "(" + text + ")";
      title.appendChild(document.createTextNode(" "));
      title.appendChild(marker);
    } else if (!required && marker) {
      marker.remove();
    }
    box.querySelectorAll("input, select, textarea").forEach(function (input) {
      if (required) { input.setAttribute("aria-required", "true"); }
      else { input.removeAttribute("aria-required"); }
    });
  }

  function apply(form, logic) {
    var all = states(form, logic), text = form.getAttribute("data-required-text") || "required";
    logic.fields.forEach(function (field) {
      if (!field.condition) { return; }
      var box = form.querySelector('[data-form-field="' + field.name + '"]');
      if (!box) { return; }
      box.hidden = !all[field.key].visible;
      markRequired(box, all[field.key].required, text);
    });
  }

  function start() {
    // A form, or one fieldset per item where a page shows several items' forms (bundles).
    document.querySelectorAll("form[data-form-logic], fieldset[data-form-logic]").forEach(function (form) {
      if (form.hasAttribute("data-logic-ready")) { return; }
      form.setAttribute("data-logic-ready", "");
      var source = document.getElementById(form.getAttribute("data-form-logic"));
      if (!source) { return; }
      var logic = JSON.parse(source.textContent);
      var update = function () { apply(form, logic); };
      form.addEventListener("input", update);
      form.addEventListener("change", update);
      update();
    });
  }
  // The catalogue editor swaps in a new preview form (static/js/editor.js).
  document.addEventListener("itportal:content-swapped", start);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
