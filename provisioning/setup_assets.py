"""The setup page's style sheet and script, served by the unit itself (no CDN, no internet).

The page works without the script (every step is a plain form); the script only
refreshes the live weights and the recent decisions once a second from ``/live``,
writing text, never markup.
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 40rem; padding: 1rem;
       color: #1b1b1b; background: #fafafa; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .8rem 1rem;
          margin: .8rem 0; }
.msg { padding: .6rem .8rem; border-radius: 6px; background: #e8f1ff; border: 1px solid #9bc; }
.msg.bad { background: #fde8e8; border-color: #d99; }
.ok { color: #17662b; font-weight: 600; } .todo { color: #8a5a00; font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid #eee; }
input[type=text], input[type=number], input[type=password] { font-size: 1.1rem; padding: .3rem;
       width: 9rem; }
button { font-size: 1rem; padding: .4rem .8rem; margin: .2rem 0; }
form.inline { display: inline; }
.live { font-variant-numeric: tabular-nums; font-weight: 600; }
"""

JS = """
"use strict";
(function () {
  function text(el, value) { if (el && el.textContent !== value) { el.textContent = value; } }
  function row(cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (c) {
      var td = document.createElement("td"); td.textContent = c; tr.appendChild(td);
    });
    return tr;
  }
  function refresh() {
    fetch("/live", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) {
        if (!doc) { return; }
        doc.slots.forEach(function (s) {
          text(document.querySelector('[data-live-slot="' + s.slot + '"]'), s.weight);
        });
        text(document.getElementById("claim-state"), doc.claim);
        var body = document.getElementById("decisions");
        if (body) {
          var rows = doc.decisions.map(row);
          body.replaceChildren.apply(body, rows);
          text(document.getElementById("decisions-note"), doc.decisions_note);
        }
      })
      .catch(function () {});
  }
  setInterval(refresh, 1000);
})();
"""
