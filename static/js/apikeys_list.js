// API Keys and Access tokens pages: select-all, the "Invalidate N ..." button of the bulk form, and
// a click on a row (not on its links, buttons or fields) that toggles the row's checkbox.
(function () {
  "use strict";
  const form = document.getElementById("bulk-invalidate");
  const button = document.getElementById("invalidate-selected");
  if (!form || !button) {
    return;
  }
  const selectAll = document.getElementById("select-all");
  const boxes = Array.from(form.querySelectorAll("tbody input[type=checkbox]"));

  function label(count) {
    if (count === 0) {
      return button.dataset.labelNone;
    }
    if (count === 1) {
      return button.dataset.labelOne;
    }
    return button.dataset.labelMany.replace("{count}", String(count));
  }

  function update() {
    const count = boxes.filter((box) => box.checked).length;
    button.disabled = count === 0;
    button.textContent = label(count);
    boxes.forEach((box) => box.closest("tr").classList.toggle("table-active", box.checked));
    if (selectAll) {
      selectAll.checked = count > 0 && count === boxes.length;
      selectAll.indeterminate = count > 0 && count < boxes.length;
    }
  }

  if (selectAll) {
    selectAll.disabled = boxes.length === 0;
    selectAll.addEventListener("change", () => {
      boxes.forEach((box) => {
        box.checked = selectAll.checked;
      });
      update();
    });
  }
  boxes.forEach((box) => box.addEventListener("change", update));

  // The checkbox of the row or header cell clicked, unless the click was meant for a control of its
  // own or ended a text selection.
  function checkboxFor(event) {
    if (event.target.closest("a, button, input, label, select, textarea, summary")) {
      return null;
    }
    if (String(window.getSelection())) {
      return null;
    }
    const cell = event.target.closest("th.selection-column");
    const container = cell || event.target.closest("tbody tr");
    return container && container.querySelector("input[type=checkbox]:not(:disabled)");
  }

  form.addEventListener("click", (event) => {
    const box = checkboxFor(event);
    if (box) {
      box.click();
    }
  });
  update();
})();
