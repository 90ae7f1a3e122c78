// Safeguard review: grading from the keyboard and the break reminder. No eval, no inline code.
(function () {
  "use strict";

  function typing(target) {
    return target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" ||
                      target.tagName === "SELECT" || target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var key = event.key.toLowerCase();
    if (key === "n") {
      var next = document.querySelector("#after-grade-next") || document.querySelector("#next-series");
      if (next) { window.location.assign(next.href); event.preventDefault(); }
      return;
    }
    if (key === "r") {
      var reveal = document.querySelector("button.reveal");
      if (reveal) { reveal.click(); event.preventDefault(); }
      return;
    }
    var target = document.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (!target) return;
    event.preventDefault();
    if (target.type === "checkbox") { target.checked = !target.checked; return; }
    target.click();
  });

  // Break reminder: after the user's configured minutes of review in this browser session.
  var minutes = parseInt(document.body.getAttribute("data-break-minutes") || "0", 10);
  var banner = document.getElementById("break");
  if (minutes > 0 && banner && window.sessionStorage) {
    var start = parseInt(sessionStorage.getItem("sg-review-start") || "0", 10);
    if (!start) { start = Date.now(); sessionStorage.setItem("sg-review-start", String(start)); }
    var due = start + minutes * 60000;
    var show = function () { banner.hidden = false; };
    if (Date.now() >= due) { show(); } else { window.setTimeout(show, due - Date.now()); }
    var dismiss = document.getElementById("break-dismiss");
    if (dismiss) {
      dismiss.addEventListener("click", function () {
        banner.hidden = true;
        sessionStorage.setItem("sg-review-start", String(Date.now()));
      });
    }
  }
})();
