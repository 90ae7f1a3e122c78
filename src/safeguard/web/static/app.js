// Safeguard review: grading from the keyboard and the break reminder. No eval, no inline code.
(function () {
  "use strict";

  function typing(target) {
    return target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" ||
                      target.tagName === "SELECT" || target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (document.getElementById("grid")) return;  // the grid's own keys, below
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

  // The grid (/cases/CASE/grid): a roving focus over the tiles, a selection, and one request
  // that grades the selection (or the focused tile when nothing is selected).
  var grid = document.getElementById("grid");
  if (grid) {
    var tiles = function () { return Array.prototype.slice.call(grid.querySelectorAll("li.tile")); };
    var anchor = 0;
    var focused = function () {
      var all = tiles();
      var at = all.indexOf(document.activeElement);
      if (at >= 0) return at;
      var roving = grid.querySelector('li.tile[tabindex="0"]');
      return roving ? all.indexOf(roving) : 0;
    };
    var focusAt = function (i) {
      var all = tiles();
      if (!all.length) return;
      i = Math.max(0, Math.min(all.length - 1, i));
      all.forEach(function (t, j) { t.tabIndex = j === i ? 0 : -1; });
      all[i].focus();
    };
    var select = function (tile, on) {
      tile.classList.toggle("selected", on);
      tile.setAttribute("aria-selected", on ? "true" : "false");
    };
    var columns = function () {  // tiles on the first row
      var all = tiles();
      var n = 0;
      while (n < all.length && all[n].offsetTop === all[0].offsetTop) n++;
      return Math.max(1, n);
    };
    var selected = function () {
      var chosen = tiles().filter(function (t) { return t.classList.contains("selected"); });
      if (!chosen.length && tiles().length) chosen = [tiles()[focused()]];
      return chosen;
    };
    var form = document.getElementById("grid-form");
    var sent = [];
    var gradeWith = function (code) {
      if (!form) return;
      Array.prototype.slice.call(form.querySelectorAll('input[name="items"]'))
        .forEach(function (input) { input.remove(); });
      sent = selected();
      sent.forEach(function (tile) {
        var input = document.createElement("input");
        input.type = "hidden"; input.name = "items"; input.value = tile.getAttribute("data-item");
        form.appendChild(input);
      });
      form.querySelector('input[name="category"]').value = code;
      form.requestSubmit();
    };
    if (form) {
      form.addEventListener("click", function (event) {
        var button = event.target.closest("button.grid-grade");
        if (button) gradeWith(button.value);
      });
      document.addEventListener("htmx:afterRequest", function (event) {
        if (event.detail.elt !== form || !event.detail.successful) return;
        var states = {};  // the answer's consensus, now that the viewer has graded these
        Array.prototype.slice.call(document.querySelectorAll("#graded .consensus[data-item]"))
          .forEach(function (span) { states[span.getAttribute("data-item")] = span.textContent; });
        sent.forEach(function (tile) {
          tile.setAttribute("data-mine", "1");
          var label = states[tile.getAttribute("data-item")] || "";
          tile.querySelector(".state").textContent =
            "graded by me · " + label.replace(/^item \d+: /, "");
          select(tile, false);
        });
        sent = [];
      });
    }
    grid.addEventListener("click", function (event) {
      var tile = event.target.closest("li.tile");
      if (!tile || event.target.closest("button")) return;
      var i = tiles().indexOf(tile);
      if (event.shiftKey) { select(tile, !tile.classList.contains("selected")); }
      anchor = i;
      focusAt(i);
    });
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
      var key = event.key;
      var moves = {ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(), ArrowDown: columns()};
      if (key in moves) {
        event.preventDefault();
        var from = focused();
        var to = Math.max(0, Math.min(tiles().length - 1, from + moves[key]));
        if (event.shiftKey) {
          if (!grid.querySelector("li.selected")) anchor = from;
          var lo = Math.min(anchor, to), hi = Math.max(anchor, to);
          tiles().forEach(function (t, j) { select(t, j >= lo && j <= hi); });
        } else {
          anchor = to;
        }
        focusAt(to);
        return;
      }
      if (key === "Escape") {
        tiles().forEach(function (t) { select(t, false); });
        return;
      }
      var lower = key.toLowerCase();
      if (lower === "a") {
        event.preventDefault();
        tiles().forEach(function (t) { select(t, true); });
        return;
      }
      if (lower === "r") {
        var tile = tiles()[focused()];
        var reveal = tile && tile.querySelector("button.reveal");
        if (reveal) { reveal.click(); event.preventDefault(); }
        return;
      }
      if (lower === "u") {
        var undo = document.querySelector('#grade-result [data-key="u"]');
        if (undo) { undo.click(); event.preventDefault(); }
        return;
      }
      if (lower === "n") {  // the next tile not graded by me, else what is left
        event.preventDefault();
        var all = tiles(), start = focused();
        for (var step = 1; step <= all.length; step++) {
          var j = (start + step) % all.length;
          if (all[j].getAttribute("data-mine") !== "1") { anchor = j; focusAt(j); return; }
        }
        var next = document.getElementById("grid-next");
        if (next) window.location.assign(next.href);
        return;
      }
      var target = form && form.querySelector('[data-grid-key="' + CSS.escape(lower) + '"]');
      if (!target) return;
      event.preventDefault();
      if (target.type === "checkbox") { target.checked = !target.checked; return; }
      gradeWith(target.value);
    });
    if (tiles().length) tiles()[0].focus({preventScroll: true});
  }

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
