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

  // A refused action (400, 403, 404 ...) or no answer at all: htmx swaps nothing for an error,
  // so its one-line message is put in the page's result area here, replacing what was there
  // (a previous grade's message would otherwise stay on screen as if this one had worked).
  // The app answers an htmx request's refusal with <p id="error-message"> alone.
  function showRefusal(text) {
    var area = document.getElementById("grade-result");
    if (!area) return;
    var line = document.createElement("p");
    line.className = "error";
    line.id = "action-error";
    line.setAttribute("role", "alert");
    line.textContent = text;
    area.replaceChildren(line);
  }

  function refusalText(xhr) {
    var body = (xhr && xhr.responseText) || "";
    var box = document.createElement("template");  // inert: nothing in it loads or runs
    box.innerHTML = body;
    var found = box.content.querySelector("#error-message");
    if (found && found.textContent.trim()) return found.textContent.trim();
    try {
      var json = JSON.parse(body);
      if (json && typeof json.error === "string") return json.error;
    } catch (ignored) { /* not JSON */ }
    return "refused (HTTP " + (xhr ? xhr.status : "?") + ")";
  }

  document.addEventListener("htmx:responseError", function (event) {
    showRefusal(refusalText(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    showRefusal("the server did not answer: try again");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    // a later success elsewhere (a reveal) takes an old refusal off the screen
    if (!event.detail.successful) return;
    var old = document.getElementById("action-error");
    if (old && old.parentNode) old.parentNode.removeChild(old);
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
