// BriLLM Explorer: keyboard stepping, nav links that keep the view state, figure export.
(function () {
  "use strict";

  function visible(el) {
    return el && el.offsetParent !== null && !el.disabled;
  }

  // Left/right arrow keys click the page's previous/next step buttons (not while typing, and not
  // while a slider or a menu has the focus: the keys then move only that control).
  document.addEventListener("keydown", function (ev) {
    var tag = (ev.target && ev.target.tagName) || "";
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(tag) || ev.target.isContentEditable) return;
    if (ev.target.closest && ev.target.closest("[role=slider], [role=combobox], [role=listbox], .rc-slider")) return;
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var cls = ev.key === "ArrowLeft" ? ".step-prev" : ev.key === "ArrowRight" ? ".step-next" : null;
    if (!cls) return;
    var button = Array.prototype.find.call(document.querySelectorAll(cls), visible);
    if (button) {
      ev.preventDefault();
      button.click();
    }
  });

  document.addEventListener("click", function (ev) {
    // Nav links carry the current hash (checkpoint, prompt, settings) to the next view; Teaching
    // opens its own small model with a ready example instead (a permalink to it still carries a hash).
    var link = ev.target.closest && ev.target.closest("a.nav-link");
    if (link) {
      link.setAttribute("href", link.pathname + (link.pathname === "/teach" ? "" : window.location.hash));
      return;
    }
    // PNG / SVG buttons next to each figure.
    var button = ev.target.closest && ev.target.closest("button.export-image");
    if (!button || !window.Plotly) return;
    var graph = document.getElementById(button.dataset.graph);
    var plot = graph && graph.querySelector(".js-plotly-plot");
    if (!plot) return;
    var layers = plot.querySelectorAll("canvas.graph-base, canvas.graph-step");
    if (layers.length) exportWithLayers(plot, layers, button.dataset.format, button.dataset.filename);
    else window.Plotly.downloadImage(plot, {format: button.dataset.format, filename: button.dataset.filename});
  });

  // A plot with canvas layers (the token graph, assets/graph_layers.js): plotly's own picture with
  // the layers drawn over it, as a PNG, or as an SVG holding them as images.
  function exportWithLayers(plot, layers, format, filename) {
    var w = plot._fullLayout.width, h = plot._fullLayout.height;
    var save = function (url) {
      var a = document.createElement("a");
      a.href = url;
      a.download = filename + "." + format;
      document.body.appendChild(a);
      a.click();
      a.remove();
    };
    window.Plotly.toImage(plot, {format: format === "svg" ? "svg" : "png", width: w, height: h, scale: 1}).then(function (url) {
      if (format === "svg") {
        var text = decodeURIComponent(url.slice(url.indexOf(",") + 1));
        var images = Array.prototype.map.call(layers, function (c) {
          return '<image x="0" y="0" width="' + w + '" height="' + h + '" href="' + c.toDataURL("image/png") + '"/>';
        }).join("");
        save("data:image/svg+xml;charset=utf-8," + encodeURIComponent(text.replace(/<\/svg>\s*$/, images + "</svg>")));
        return;
      }
      var picture = new Image();
      picture.onload = function () {
        var canvas = document.createElement("canvas");
        canvas.width = w;
        canvas.height = h;
        var ctx = canvas.getContext("2d");
        ctx.drawImage(picture, 0, 0, w, h);
        Array.prototype.forEach.call(layers, function (c) { ctx.drawImage(c, 0, 0, w, h); });
        save(canvas.toDataURL("image/png"));
      };
      picture.src = url;
    });
  }
})();

// Step arithmetic runs in the browser (assets/stepping.js), so fast key presses never read a stale step.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  explorer: {
    step: function (_prev, _next, _tick, value, max) {
      var triggered = (window.dash_clientside.callback_context.triggered || [])[0];
      var id = triggered ? triggered.prop_id : "";
      var delta = /-prev\./.test(id) ? -1 : /-(next|interval)\./.test(id) ? 1 : 0;
      var step = window.brillmStepping.move(value, delta, (max || 0) + 1);
      return step === value ? window.dash_clientside.no_update : step;
    }
  }
});
