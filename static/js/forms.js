// Every page with a form sent back with errors: each invalid field is announced as invalid, with its
// error as its description, and the first one has the focus, so the error is where the user is.
(function () {
  "use strict";
  // Fields rendered by hand mark themselves with Bootstrap's .is-invalid only.
  document.querySelectorAll(".is-invalid").forEach((field) => {
    field.setAttribute("aria-invalid", "true");
    const feedback = field.parentElement.querySelector(".invalid-feedback[id]");
    const described = (field.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    if (feedback && !described.includes(feedback.id)) {
      field.setAttribute("aria-describedby", described.concat(feedback.id).join(" "));
    }
  });
  const first = document.querySelector("form [aria-invalid=true]");
  if (!first) {
    return;
  }
  // An error inside a closed section opens it: a hidden field cannot take the focus.
  for (let section = first.closest("details"); section; section = section.parentElement.closest("details")) {
    section.open = true;
  }
  first.focus();
})();
