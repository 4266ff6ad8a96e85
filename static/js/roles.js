// Role editor: add and remove index and application privilege rows, and one-click privilege
// suggestions for index rows.
(function () {
  "use strict";

  var form = document.getElementById("role-form");
  if (!form) {
    return;
  }

  function split(value) {
    return value.split(",").map(function (item) { return item.trim(); }).filter(Boolean);
  }

  function privilegesInput(row) {
    return row.querySelector("input[name$='-privileges']");
  }

  function refreshSuggestions(row) {
    var chosen = split(privilegesInput(row).value);
    row.querySelectorAll("[data-privilege]").forEach(function (button) {
      var on = chosen.indexOf(button.dataset.privilege) !== -1;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }

  function enhance(row) {
    row.querySelectorAll("[data-privilege-suggestions], [data-remove-row]").forEach(function (element) {
      element.hidden = false;
    });
    refreshSuggestions(row);
  }

  // One list of formset rows: "indices" or "applications", each with its template and add button.
  function rowList(prefix, kind) {
    var rows = document.getElementById(kind + "-rows");
    var template = document.getElementById(kind + "-row-template");
    var total = form.querySelector("input[name='" + prefix + "-TOTAL_FORMS']");
    var addButton = document.getElementById("add-" + kind + "-row");
    var rowSelector = "[data-" + kind + "-row]";

    rows.addEventListener("click", function (event) {
      var row = event.target.closest(rowSelector);
      if (!row) {
        return;
      }
      var suggestion = event.target.closest("[data-privilege]");
      if (suggestion) {
        var input = privilegesInput(row);
        var chosen = split(input.value);
        var at = chosen.indexOf(suggestion.dataset.privilege);
        if (at === -1) {
          chosen.push(suggestion.dataset.privilege);
        } else {
          chosen.splice(at, 1);
        }
        input.value = chosen.join(", ");
        refreshSuggestions(row);
        return;
      }
      if (event.target.closest("[data-remove-row]")) {
        // An emptied row is ignored when the form is saved.
        row.querySelectorAll("input[type='text'], textarea").forEach(function (field) { field.value = ""; });
        row.querySelectorAll("input[type='checkbox']").forEach(function (field) { field.checked = false; });
        row.hidden = true;
      }
    });

    rows.addEventListener("input", function (event) {
      var row = event.target.closest(rowSelector);
      if (row && event.target === privilegesInput(row)) {
        refreshSuggestions(row);
      }
    });

    addButton.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      var fragment = template.content.cloneNode(true);
      fragment.querySelectorAll("[name], [id], [for]").forEach(function (element) {
        ["name", "id", "for"].forEach(function (attribute) {
          var value = element.getAttribute(attribute);
          if (value) {
            element.setAttribute(attribute, value.replace(/__prefix__/g, String(index)));
          }
        });
      });
      var row = fragment.querySelector(rowSelector);
      rows.appendChild(fragment);
      total.value = String(index + 1);
      enhance(row);
      row.querySelector("input[type='text']").focus();
    });

    rows.querySelectorAll(rowSelector).forEach(enhance);
    addButton.hidden = false;
  }

  rowList("indices", "index");
  rowList("applications", "application");
})();
