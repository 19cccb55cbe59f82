/* MissionHub: countdowns, the viewer's time zone, confirmations. Pages work without it. */
(function () {
  "use strict";

  // Times are shown in the viewer's zone: tell the server once.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("mh_tz=" + zone) === -1) {
      document.cookie = "mh_tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* old browser: UTC */ }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function remaining(ms) {
    if (ms <= 0) return null;
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (d ? d + "d " : "") + (d || h ? pad(h) + ":" : "") + pad(m) + ":" + pad(sec);
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = remaining(Date.parse(el.getAttribute("data-deadline")) - now);
      el.textContent = left === null ? (el.getAttribute("data-ended") || "0:00") : left;
      el.classList.toggle("ending", left !== null && Date.parse(el.getAttribute("data-deadline")) - now < 60000);
    });
  }

  document.addEventListener("click", function (event) {
    var confirmer = event.target.closest("[data-confirm]");
    if (confirmer && !window.confirm(confirmer.getAttribute("data-confirm"))) event.preventDefault();
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
  });

  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 1000); });
  document.addEventListener("htmx:afterSwap", tick);
})();
