// Times in the reader's own time zone and language, and how long ago: every
// <time datetime="…Z" data-t="unix seconds"> the server wrote in UTC ("2026-11-30 03:18 UTC")
// becomes "30/11 00:18 · há 12 min" (pt-BR) or "Nov 30, 00:18 · 12 min. ago" (en).
// Without JavaScript the server's UTC text and its "… ago" stay, which are right too.
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";
  var abs, rel;
  try {
    abs = new Intl.DateTimeFormat(lang, {month: "short", day: "numeric", hour: "2-digit",
                                         minute: "2-digit", second: "2-digit"});
    rel = new Intl.RelativeTimeFormat(lang, {numeric: "always", style: "short"});
  } catch (e) {
    return;  // a browser without Intl keeps the server's UTC text
  }
  var steps = [[60, "second"], [60, "minute"], [24, "hour"], [30, "day"], [12, "month"],
               [Infinity, "year"]];

  function ago(seconds) {
    var value = seconds, unit = "second";
    for (var i = 0; i < steps.length; i++) {
      unit = steps[i][1];
      if (Math.abs(Math.round(value)) < steps[i][0]) break;  // 59.6 s reads "1 min"
      value = value / steps[i][0];
    }
    return rel.format(-Math.round(value), unit);
  }

  function render() {
    var now = Date.now() / 1000;
    var nodes = document.querySelectorAll("time[data-t]");
    for (var i = 0; i < nodes.length; i++) {
      var t = parseFloat(nodes[i].getAttribute("data-t"));
      if (!isFinite(t) || t <= 0) continue;
      var text = abs.format(new Date(t * 1000));
      if (!nodes[i].hasAttribute("data-absolute")) text += " · " + ago(now - t);
      nodes[i].textContent = text;
      nodes[i].setAttribute("data-local", "1");
    }
  }

  render();
  setInterval(render, 30000);
})();
