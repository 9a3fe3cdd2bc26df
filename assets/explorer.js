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
    if (plot) {
      window.Plotly.downloadImage(plot, {format: button.dataset.format, filename: button.dataset.filename});
    }
  });
})();

// Step arithmetic runs in the browser, so fast key presses never read a stale step.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  explorer: {
    step: function (_prev, _next, _tick, value, max) {
      var triggered = (window.dash_clientside.callback_context.triggered || [])[0];
      var id = triggered ? triggered.prop_id : "";
      var step = value || 0;
      if (/-prev\./.test(id)) step -= 1;
      else if (/-(next|interval)\./.test(id)) step += 1;
      step = Math.max(0, Math.min(step, max || 0));
      return step === value ? window.dash_clientside.no_update : step;
    }
  }
});
