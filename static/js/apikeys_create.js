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

// The privilege picker: writes one role of the role descriptors from the ticked privileges, keeping
// the other roles already typed.
(function () {
  "use strict";
  const picker = document.getElementById("privilege-picker");
  const descriptors = document.getElementById("id_role_descriptors");
  if (!picker || !descriptors) {
    return;
  }
  const status = document.getElementById("picker-status");
  picker.hidden = false;

  function ticked(kind) {
    return Array.from(picker.querySelectorAll("[data-picker-" + kind + "]:checked"), (box) => box.value);
  }

  function say(text, problem) {
    status.textContent = text;
    status.classList.toggle("text-danger", problem);
  }

  document.getElementById("picker-write").addEventListener("click", () => {
    const name = document.getElementById("picker-role").value.trim();
    const names = document.getElementById("picker-indices").value.split(",").map((item) => item.trim()).filter(Boolean);
    const indexPrivileges = ticked("index");
    if (!name) {
      say("Enter a role name.", true);
      return;
    }
    if (names.length > 0 !== indexPrivileges.length > 0) {
      say("Enter indices and pick their privileges, or neither.", true);
      return;
    }
    let roles = {};
    if (descriptors.value.trim() !== "") {
      try {
        roles = JSON.parse(descriptors.value);
      } catch (error) {
        roles = null;
      }
      if (roles === null || typeof roles !== "object" || Array.isArray(roles)) {
        say("The role descriptors are not a JSON object: correct them or empty the field first.", true);
        return;
      }
    }
    const role = { cluster: ticked("cluster"), indices: [] };
    if (names.length > 0) {
      role.indices.push({ names: names, privileges: indexPrivileges });
    }
    const replaced = Object.prototype.hasOwnProperty.call(roles, name);
    roles[name] = role;
    descriptors.value = JSON.stringify(roles, null, 2);
    say((replaced ? "Replaced" : "Added") + " role '" + name + "' in the role descriptors.", false);
  });
})();
