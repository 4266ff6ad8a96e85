// The new API key's page: copy buttons.
(function () {
  "use strict";
  function selectText(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.querySelectorAll("[data-copy-target]").forEach((button) => {
    const original = button.textContent;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copyTarget);
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.textContent = "Copied";
      } catch (error) {
        selectText(source);
        button.textContent = "Press Ctrl+C";
      }
      window.setTimeout(() => {
        button.textContent = original;
      }, 2000);
    });
  });
})();
