// BriLLM Explorer: stepping in the browser. A page's step store holds every step of the trace on
// screen (the engine's numbers, computed once on the server); these functions redraw a step from
// it without a request. Store layout: see explorer/stepping.py.
(function () {
  "use strict";

  var NO = function () { return window.dash_clientside.no_update; };

  // A step's figure: the base with trace k's properties and top-level layout keys replaced
  // (the same merge as explorer.figures.signal.apply_frame).
  function applyFrame(base, frame) {
    var data = base.data.map(function (trace, k) {
      return Object.assign({}, trace, (frame.data || [])[k] || {});
    });
    return {data: data, layout: Object.assign({}, base.layout, frame.layout || {})};
  }

  // The memory ribbon of a step: one horizontal segment per earlier output, width = its weight.
  function ribbon(memory, step) {
    var weights = memory.weights[step] || [];
    if (!weights.length) return memory.empty;
    var starts = [], total = 0;
    weights.forEach(function (w) { starts.push(total); total += w; });
    var trace = Object.assign({}, memory.base.data[0], {
      x: weights, base: starts, y: weights.map(function () { return "memory"; }),
      text: memory.texts.slice(0, weights.length), customdata: memory.labels.slice(0, weights.length),
      marker: Object.assign({}, memory.base.data[0].marker, {color: weights.map(function (_, j) { return j; })})
    });
    var title = "Memory at step " + step + ": " + weights.length + " earlier output" +
      (weights.length === 1 ? "" : "s") + " (hover a segment for its weight)";
    return {data: [trace], layout: Object.assign({}, memory.base.layout,
      {title: Object.assign({}, memory.base.layout.title, {text: title})})};
  }

  // A figure whose steps differ only in layout shapes (the heatmap's cursor) moves them in place:
  // redrawing the whole heatmap costs several times more. Dash's copy of the figure keeps the
  // step the trace arrived with, which is only used again when a new trace replaces it.
  function moveCursor(fig, step) {
    var gd = document.querySelector("#" + fig.graph + " .js-plotly-plot");
    if (!gd || !window.Plotly || !gd._fullLayout) return false;
    var update = {};
    fig.frames[step].layout.shapes.forEach(function (shape, k) {
      Object.keys(shape).forEach(function (key) { update["shapes[" + k + "]." + key] = shape[key]; });
    });
    window.Plotly.relayout(gd, update);
    return true;
  }

  // Keep the step in the address bar without telling Dash (no request): the link stays a permalink.
  function writeStep(step) {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    if (step > 0) params.set("s", String(step)); else params.delete("s");
    var text = params.toString();
    var hash = text ? "#" + text : "";
    if (hash !== window.location.hash) {
      window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search + (hash || "#"));
    }
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    stepping: {
      // slider value + step store -> [each figure..., step label, chip classes, views style]
      draw: function (value, store) {
        var count = store && store.figures ? store.figures.length : 0;
        var out = [];
        if (!store || !store.n) {
          for (var k = 0; k < count; k++) out.push(NO());
          return out.concat(["", [], {display: "none"}]);
        }
        var step = Math.max(0, Math.min(value || 0, store.n - 1));
        var triggered = (window.dash_clientside.callback_context.triggered || []).map(function (t) { return t.prop_id; });
        var newTrace = triggered.some(function (id) { return /-steps\.data$/.test(id); }) || !triggered.length;
        store.figures.forEach(function (fig) {
          if (fig.kind === "ribbon") out.push(ribbon(fig, step));
          else if (fig.kind === "cursor" && !newTrace && moveCursor(fig, step)) out.push(NO());
          else out.push(applyFrame(fig.base, fig.frames[step]));
        });
        // chips of one or more paths, each path's chips from its start index on
        var starts = store.chip_starts || [0];
        var chips = (store.chips || []).map(function (cls, k) {
          var start = Math.max.apply(null, starts.filter(function (s) { return s <= k; }));
          var i = k - start;
          return cls + (i === step ? " source" : i === step + 1 ? " target" : "");
        });
        writeStep(step);
        // the figures were hidden until now (empty state): let every graph fit its panel once shown
        if (newTrace) setTimeout(function () { window.dispatchEvent(new Event("resize")); }, 0);
        return out.concat([store.labels[step], chips, {}]);
      },
      // play / pause, and stop at the last step: [interval disabled, button text, slider value]
      play: function (_clicks, value, disabled, max) {
        var triggered = (window.dash_clientside.callback_context.triggered || [])[0];
        var byButton = triggered && /-play\.n_clicks$/.test(triggered.prop_id);
        var last = max || 0;
        if (byButton) {
          var start = disabled;  // paused -> playing
          var from = start && (value || 0) >= last ? 0 : NO();
          return [!start, start ? "❚❚ pause" : "▶ play", from];
        }
        if (!disabled && (value || 0) >= last) return [true, "▶ play", NO()];
        return [NO(), NO(), NO()];
      },
      // a click on token chip i shows the step that arrived at it (i - 1; the first chip: step 0)
      chip: function (clicks) {
        var triggered = (window.dash_clientside.callback_context.triggered || [])[0];
        if (!triggered || !triggered.value) return NO();
        var index = JSON.parse(triggered.prop_id.split(".")[0]).index;
        return Math.max(index - 1, 0);
      }
    }
  });
})();
