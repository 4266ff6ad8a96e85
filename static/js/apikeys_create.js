// Create and update API key pages: the live "expires on" hint (within the maximum lifetime, when
// one is set) and the role descriptor boilerplates.
(function () {
  "use strict";
  // Elasticsearch time units, in milliseconds (micros and nanos are fractions of one).
  const UNIT_MS = { d: 86400000, h: 3600000, m: 60000, s: 1000, ms: 1, micros: 0.001, nanos: 0.000001 };
  const TIME_VALUE = /^([0-9]+)(d|h|ms|m|s|micros|nanos)$/;
  const DATE_FORMAT = new Intl.DateTimeFormat("en-US", {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23", timeZone: "UTC",
  });

  const expiration = document.getElementById("id_expiration");
  const hint = document.getElementById("expiration-hint");
  const maxLifetime = expiration && expiration.dataset.maxLifetimeMs ? Number(expiration.dataset.maxLifetimeMs) : null;
  const maxWords = expiration ? expiration.dataset.maxLifetimeWords : "";

  function showHint() {
    const text = expiration.value.trim();
    hint.classList.remove("text-danger");
    if (text === "") {
      if (expiration.dataset.emptyHint) {
        hint.textContent = expiration.dataset.emptyHint;
      } else if (maxLifetime === null) {
        hint.textContent = "This API key will never expire.";
      } else {
        hint.textContent = "Enter an expiration: API keys must expire within " + maxWords + ".";
      }
      return;
    }
    const match = TIME_VALUE.exec(text);
    const lifetime = match ? Number(match[1]) * UNIT_MS[match[2]] : NaN;
    const expires = new Date(Date.now() + lifetime);
    let problem = null;
    if (!match) {
      problem = "Enter a positive number followed by d, h, m, s, ms, micros or nanos, such as 30d.";
    } else if (lifetime < 1) {
      problem = "An API key must live at least 1ms.";
    } else if (maxLifetime !== null && lifetime > maxLifetime) {
      problem = "That is longer than the maximum of " + maxWords + ".";
    } else if (Number.isNaN(expires.getTime()) || expires.getUTCFullYear() > 9999) {
      problem = "That is too far in the future.";
    }
    if (problem) {
      hint.textContent = problem;
      hint.classList.add("text-danger");
      return;
    }
    hint.textContent = "This API key will expire on " + DATE_FORMAT.format(expires) + " UTC.";
  }

  if (expiration && hint) {
    expiration.addEventListener("input", showHint);
    showHint();
  }

  document.querySelectorAll("[data-boilerplate]").forEach((button) => {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.boilerplateTarget);
      target.value = button.dataset.boilerplate;
      target.focus();
      target.setSelectionRange(0, 0);
      target.scrollTop = 0;
    });
  });
})();
