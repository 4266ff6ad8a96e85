// The new API key's page: copy buttons, whose outcome a status region announces to screen readers.
(function () {
  "use strict";
  const status = document.getElementById("copy-status");

  function selectText(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function announce(text) {
    // Emptied first, so that the same words copied twice are announced twice.
    status.textContent = "";
    window.setTimeout(() => {
      status.textContent = text;
    }, 50);
  }

  document.querySelectorAll("[data-copy-target]").forEach((button) => {
    const original = button.textContent;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copyTarget);
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.textContent = "Copied";
        announce("Copied to clipboard");
      } catch (error) {
        selectText(source);
        button.textContent = "Press Ctrl+C";
        announce("Could not copy to the clipboard: the text is selected, press Ctrl+C to copy it");
      }
      window.setTimeout(() => {
        button.textContent = original;
      }, 2000);
    });
  });
})();
