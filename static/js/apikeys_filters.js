// API Keys page: a filter applies as soon as it is picked; without JavaScript the Apply button
// submits the same form. A select applies on change; the Owner field when a suggestion is picked
// from its list, not while a name is being typed.
(function () {
  "use strict";
  const form = document.getElementById("filters");
  if (!form) {
    return;
  }
  form.querySelectorAll("select.apply-on-change").forEach((select) => {
    select.addEventListener("change", () => form.requestSubmit());
  });
  const owner = form.querySelector("input.apply-on-pick");
  if (owner) {
    owner.addEventListener("input", (event) => {
      // Picking a suggestion replaces the text at once; typing inserts it letter by letter.
      if (!(event instanceof InputEvent) || event.inputType === "insertReplacementText") {
        form.requestSubmit();
      }
    });
  }
})();
