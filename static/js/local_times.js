// Dates arrive in UTC, stated ("2026-11-30 14:05 UTC"); here they are shown in the browser's time
// zone with its abbreviation, the UTC time staying on hover. A relative time ("3 days ago") gets
// the absolute local time on hover, beside the UTC one.
(function () {
  "use strict";

  const pad = (number) => String(number).padStart(2, "0");

  function zoneName(moment) {
    const parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(moment);
    const zone = parts.find((part) => part.type === "timeZoneName");
    return zone ? zone.value : "";
  }

  function local(moment) {
    const date = `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}`;
    return `${date} ${pad(moment.getHours())}:${pad(moment.getMinutes())} ${zoneName(moment)}`.trim();
  }

  function momentOf(element) {
    const moment = new Date(element.getAttribute("datetime"));
    return Number.isNaN(moment.getTime()) ? null : moment;
  }

  document.querySelectorAll("time[data-local-time]").forEach((element) => {
    const moment = momentOf(element);
    if (moment) {
      element.textContent = local(moment);
    }
  });
  document.querySelectorAll("time[data-local-title]").forEach((element) => {
    const moment = momentOf(element);
    if (moment) {
      element.title = `${local(moment)} (${element.title})`;
    }
  });
})();
