// BriLLM Explorer: colour scales shared by the page-drawn views (the memory ribbon, the token graph's canvas).
window.brillmColor = (function () {
  "use strict";

  // The colour at t (clamped to 0..1) of a scale of evenly spaced "#rrggbb" stops, mixed linearly.
  function scale(stops, t) {
    var x = Math.max(0, Math.min(1, t)) * (stops.length - 1), i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
    var rgb = [1, 3, 5].map(function (at) {
      var a = parseInt(stops[i].substr(at, 2), 16), b = parseInt(stops[i + 1].substr(at, 2), 16);
      return Math.round(a + (b - a) * f);
    });
    return "rgb(" + rgb.join(",") + ")";
  }

  return {scale: scale};
})();
