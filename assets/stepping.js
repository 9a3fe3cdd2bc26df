// BriLLM Explorer: stepping in the browser. A page's step store holds every step of the trace on
// screen (the engine's numbers, computed once on the server); a step is drawn from it with no
// request. Store layout: see explorer/stepping.py.
//
// The current step has one owner: this script's record of the page (`pages[prefix].step`), while a
// trace is on screen. Everything else follows it: `show` draws the figures, the graph layers, the
// label and the chips; the slider is told after the frame is painted, and so is the link's s=; the
// server reads the step from the slider when it needs one (a re-route, an export). While no trace is
// on screen there is nothing to draw, and the slider alone holds the step. The step arithmetic
// (`clamp`, `move`, `chipStep`) is written once, here, for every script.
//
// Two paths lead to a drawn step. A new trace (the store changes) goes through Dash: the draw
// callback returns every figure, so Dash's copy of each figure is that trace's. A step of the
// trace on screen is drawn directly: the previous / next buttons (and the arrow keys, which click
// them) call `show` on the click itself, which restyles the plotly charts in place, writes the
// label and the chips, and only then tells Dash the slider's new value; a slider drag, a play
// tick or a chip click reaches `show` through the draw callback. Dash's copies of the figures then
// keep the first step drawn: dcc.Graph redraws from them only when a new trace replaces them.
window.brillmStepping = (function () {
  "use strict";

  var NO = function () { return window.dash_clientside.no_update; };
  var THINNEST = 1;  // % of the memory ribbon: its thinner segments are widened to this, so each can be hovered

  // A step within a trace of n steps (0 when there are none).
  function clamp(step, n) {
    return Math.max(0, Math.min(step || 0, n - 1));
  }

  // Previous (delta -1) or next (+1) of `step` in a trace of n steps.
  function move(step, delta, n) {
    return clamp((step || 0) + delta, n);
  }

  // The step a click on path chip `index` shows: the one that arrived at it (the first chip: step 0).
  function chipStep(index) {
    return Math.max(index - 1, 0);
  }

  // Widths (% of the ribbon) of segments with these weights: proportional to the weights, except that
  // none is thinner than `least` %; the others give up that room in proportion. Equal widths when even
  // that does not fit.
  function segmentWidths(weights, least) {
    var n = weights.length, total = weights.reduce(function (a, w) { return a + w; }, 0);
    if (!n) return [];
    if (n * least >= 100 || !(total > 0)) return weights.map(function () { return 100 / n; });
    var widened = weights.map(function () { return false; }), changed = true, scale = 100 / total;
    while (changed) {  // widen the thinnest until the rest, scaled to fill what is left, are all wide enough
      var kept = 0, count = 0;
      weights.forEach(function (w, j) { if (widened[j]) count++; else kept += w; });
      scale = kept > 0 ? (100 - count * least) / kept : 0;
      changed = false;
      weights.forEach(function (w, j) {
        if (!widened[j] && w * scale < least) { widened[j] = true; changed = true; }
      });
    }
    return weights.map(function (w, j) { return widened[j] ? least : w * scale; });
  }

  // Where (% of the ribbon) segments drawn `widths` wide reach the cumulative weight `share` (0..1): the
  // ribbon's scale stays true to the weights where thin segments were widened.
  function sharePosition(weights, widths, share) {
    var total = weights.reduce(function (a, w) { return a + w; }, 0), reached = 0, left = 0;
    if (share <= 0) return 0;  // the left end, also before segments of weight 0
    for (var j = 0; j < weights.length && total > 0; j++) {
      var w = weights[j] / total;
      if (w > 0 && reached + w >= share) return left + widths[j] * (share - reached) / w;
      reached += w;
      left += widths[j];
    }
    return share > 0 ? 100 : 0;
  }
  var pages = {};  // prefix -> {store, ids (graph ids of the store's figures), step drawn, sent (slider value told to Dash)}

  function plotOf(id) {
    return document.querySelector("#" + id + " .js-plotly-plot");
  }

  // A step's figure: the base with trace k's properties and top-level layout keys replaced
  // (the same merge as explorer.figures.signal.apply_frame).
  function applyFrame(base, frame) {
    var data = base.data.map(function (trace, k) {
      return Object.assign({}, trace, (frame.data || [])[k] || {});
    });
    return {data: data, layout: Object.assign({}, base.layout, frame.layout || {})};
  }

  // An element with a class and a text (never markup: the texts hold tokens).
  function element(tag, cls, text) {
    var el = document.createElement(tag);
    el.className = cls;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // The memory ribbon of a step, drawn as page elements (a plotly chart took most of a key press):
  // a title, one segment per earlier output c_j (width = its weight a_j, a colour of the scale in
  // order, its token inside, its label and exact weight on hover), the 0..1 scale and the caption.
  function drawRibbon(memory, id, step) {
    var el = document.getElementById(id);
    if (!el) return;
    var weights = memory.weights[step] || [], parts = [];
    if (!weights.length) {
      parts.push(element("div", "ribbon-note", memory.empty));
    } else {
      parts.push(element("div", "ribbon-title", "Memory at step " + step + ": " + weights.length + " earlier output" +
        (weights.length === 1 ? "" : "s") + " (hover a segment for its weight)"));
      var bar = element("div", "ribbon-bar"), widths = segmentWidths(weights, THINNEST);
      weights.forEach(function (w, j) {
        var t = weights.length > 1 ? j / (weights.length - 1) : 0;
        var segment = element("div", "ribbon-segment", memory.texts[j]);
        segment.style.width = widths[j] + "%";
        segment.style.background = window.brillmColor.scale(memory.scale, t);
        segment.style.color = t > 0.6 ? "#444" : "white";  // Viridis is dark up to 0.6
        segment.title = memory.labels[j] + "\nweight a = " + String(Number(w.toPrecision(9)));  // float32, exact
        bar.appendChild(segment);
      });
      var scale = element("div", "ribbon-scale");  // the shares 0, 0.5 and 1 where the drawn segments reach them
      [0, 0.5, 1].forEach(function (share) {
        var tick = element("span", "", String(share));
        tick.style.left = sharePosition(weights, widths, share) + "%";
        scale.appendChild(tick);
      });
      parts.push(bar, scale);
      memory.caption.forEach(function (line) { parts.push(element("div", "ribbon-caption", line)); });
      if (widths.some(function (x, j) { return x > 100 * weights[j] + 1e-9; })) {
        parts.push(element("div", "ribbon-caption", memory.widened));
      }
    }
    el.replaceChildren.apply(el, parts);
  }

  // The whole figure of a step ("frames", and "cursor" drawn in full).
  function figureAt(fig, step) {
    return applyFrame(fig.base, fig.frames[step]);
  }

  // A cursor figure's step: its shapes differ from the drawn ones only in x (the cursor moves
  // along the steps), so the drawn shapes are shifted on screen, and the layout takes the new
  // shapes so that plotly's next redraw of its own (a zoom, a resize) puts them there too. Even a
  // relayout of the shapes alone costs more than the rest of a step. Anything else: relayout.
  function moveCursor(gd, shapes) {
    var full = gd._fullLayout, xa = full.xaxis;
    var paths = shapes.map(function (_, k) { return gd.querySelector(".shapelayer path[data-index='" + k + "']"); });
    var movable = full.shapes && full.shapes.length === shapes.length && paths.every(Boolean) &&
      shapes.every(function (shape, k) {
        var drawn = full.shapes[k];
        return drawn.xref === "x" && drawn.y0 === shape.y0 && drawn.y1 === shape.y1 &&
          Math.abs((shape.x1 - shape.x0) - (drawn.x1 - drawn.x0)) < 1e-9;
      });
    gd.layout.shapes = shapes.map(function (shape) { return Object.assign({}, shape); });
    if (!movable) return window.Plotly.relayout(gd, {shapes: gd.layout.shapes});
    shapes.forEach(function (shape, k) {
      var dx = xa.l2p(shape.x0) - xa.l2p(full.shapes[k].x0);
      paths[k].setAttribute("transform", "translate(" + dx + ",0)");
    });
  }

  // The element a figure names itself (token graph layers, text blocks, the ribbon), or null: Dash draws it.
  function ownElement(fig) {
    return fig.kind === "graph" ? fig.graph : fig.kind === "html" || fig.kind === "ribbon" ? fig.element : null;
  }

  // Draw step `step` of one figure into its plotly element (a text block: its element), in place.
  function drawFigure(fig, id, step) {
    if (fig.kind === "graph") return window.brillmGraph.show(id, fig, step);
    if (fig.kind === "ribbon") return drawRibbon(fig, id, step);
    if (fig.kind === "html") {  // markup escaped on the server; Dash never renders this element's children
      var el = document.getElementById(id);
      if (el) el.innerHTML = fig.steps[step];
      return;
    }
    var gd = plotOf(id);
    if (!gd || !window.Plotly || !gd._fullLayout) return;
    if (fig.kind === "cursor") moveCursor(gd, fig.frames[step].layout.shapes);
    else window.Plotly.react(gd, figureAt(fig, step));
  }

  // Whether an element shows any part of itself in the window.
  function onScreen(id) {
    var el = document.getElementById(id), box = el && el.getBoundingClientRect();
    return !!box && box.bottom > 0 && box.top < window.innerHeight && box.height > 0;
  }

  // Chip classes at a step: chips of one or more paths, each path's chips from its start index on.
  function chipClasses(store, step) {
    var starts = store.chip_starts || [0];
    return (store.chips || []).map(function (cls, k) {
      var start = Math.max.apply(null, starts.filter(function (s) { return s <= k; }));
      var i = k - start;
      return cls + (i === step ? " source" : i === step + 1 ? " target" : "");
    });
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

  // Write a text into a Dash-rendered element through its own text node, so that React's later
  // updates of the same element still reach the screen.
  function setText(el, text) {
    if (!el) return;
    if (el.childNodes.length === 1 && el.firstChild.nodeType === 3) el.firstChild.nodeValue = text;
    else if (!el.childNodes.length) el.appendChild(document.createTextNode(text));
  }

  // The path chips' classes at `step`, written straight into the page (Dash never sets them: a step's
  // classes went through Dash's renderer for every chip, on every key press).
  function paintChips(prefix, store, step) {
    var classes = chipClasses(store, step);
    document.querySelectorAll("[id*='\"type\":\"" + prefix + "-chip\"']").forEach(function (chip) {
      var index = JSON.parse(chip.id).index;
      if (classes[index] !== undefined && chip.className !== classes[index]) chip.className = classes[index];
    });
  }

  // After this frame is painted.
  function afterPaint(f) {
    window.requestAnimationFrame(function () { setTimeout(f, 0); });
  }

  // Draw step `step` of a page's trace: every figure in the window, the label and the chips now;
  // the link and figures scrolled out of the window just after the frame is painted (only the
  // latest step). The page's layout is read once, before anything is written, so that no write forces
  // the browser to lay the page out again before plotly's own reads.
  function show(prefix, step) {
    var page = pages[prefix], now = [], later = [], k = 0;
    page.step = step;
    page.store.figures.forEach(function (fig) {  // the ids line up with the figures Dash draws
      var id = ownElement(fig) || page.ids[k++];
      (onScreen(id) ? now : later).push([fig, id]);
    });
    now.forEach(function (pair) { drawFigure(pair[0], pair[1], step); });
    setText(document.getElementById(prefix + "-step-label"), page.store.labels[step]);
    paintChips(prefix, page.store, step);
    afterPaint(function () {  // the address bar (a few ms in Chrome) and figures out of sight: after the frame
      if (pages[prefix] !== page || page.step !== step) return;  // overtaken: that step writes them
      writeStep(step);
      later.forEach(function (pair) { drawFigure(pair[0], pair[1], step); });
    });
  }

  // A slider value from Dash on the trace on screen: its step drawn, unless it is a value told to Dash
  // (page.sent) that a newer step has overtaken since; false then.
  function follow(prefix, value) {
    var page = pages[prefix];
    if (page.sent !== null && value !== page.sent) return false;
    page.sent = null;  // told and come back
    var step = clamp(value, page.store.n);
    if (step !== page.step) show(prefix, step);
    return true;
  }

  // Previous / next on a page whose trace is in the browser: draw the step on the click itself,
  // then tell Dash (the slider follows; its draw callback finds the step already drawn). While no
  // trace is on screen the click is left to Dash's own callback (explorer.step).
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest(".step-prev, .step-next");
    var prefix = button && button.id.replace(/-(prev|next)$/, "");
    var page = prefix && pages[prefix];
    if (!page || !document.getElementById(prefix + "-step-label")) return;
    ev.stopPropagation();
    var step = move(page.step, /-prev$/.test(button.id) ? -1 : 1, page.store.n);
    if (step === page.step) return;
    show(prefix, step);
    page.sent = step;
    afterPaint(function () {
      if (pages[prefix] === page && page.sent === step) window.dash_clientside.set_props(prefix + "-slider", {value: step});
    });
  }, true);

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    stepping: {
      // slider value + step store (+ the store's id, naming the page, and the graph ids of the
      // figures Dash draws) -> [each figure..., step label, views style]. A new trace's figures and
      // label go through Dash; a step of the trace on screen is drawn by `show`, and Dash is told nothing.
      draw: function (value, store, storeId) {
        var ids = Array.prototype.slice.call(arguments, 3);
        var prefix = storeId.replace(/-steps$/, "");
        var none = ids.map(NO);
        if (!store || !store.n) {
          if (pages[prefix]) pages[prefix].store.figures.forEach(function (fig) {
            if (fig.kind === "graph") window.brillmGraph.show(fig.graph, null, 0);
          });
          delete pages[prefix];
          return none.concat(["", {display: "none"}]);
        }
        var step = clamp(value, store.n);
        var page = pages[prefix];
        if (!page || page.store !== store) {
          // a new trace: every figure through Dash, once
          page = pages[prefix] = {store: store, ids: ids, step: step, sent: null};
          var out = [];
          store.figures.forEach(function (fig) {
            if (ownElement(fig)) drawFigure(fig, ownElement(fig), step);
            else out.push(figureAt(fig, step));
          });
          writeStep(step);
          // the label in the page too: Dash's copy of it may still hold this very text from an earlier
          // trace while `show` wrote another, and Dash would then leave the page as it is
          setText(document.getElementById(prefix + "-step-label"), store.labels[step]);
          afterPaint(function () {  // the new trace's chips are in the page by then
            if (pages[prefix] === page) paintChips(prefix, store, page.step);
          });
          // the figures were hidden until now (empty state): let every graph fit its panel once shown
          setTimeout(function () { window.dispatchEvent(new Event("resize")); }, 0);
          return out.concat([store.labels[step], {}]);
        }
        follow(prefix, value);
        return none.concat([NO(), NO()]);
      },
      // play / pause, and stop at the last step: [interval disabled, button text, slider value]. A move
      // of the slider is also drawn here: Dash holds the draw callback back while a new trace is on its
      // way (its store is an input), and the slider, the label and the figures must agree meanwhile.
      play: function (_clicks, value, disabled, max) {
        var triggered = (window.dash_clientside.callback_context.triggered || [])[0];
        var byButton = triggered && /-play\.n_clicks$/.test(triggered.prop_id);
        var moved = triggered && /-slider\.value$/.test(triggered.prop_id);
        if (moved && pages[triggered.prop_id.replace(/-slider\.value$/, "")]) {
          follow(triggered.prop_id.replace(/-slider\.value$/, ""), value);
        }
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
        return chipStep(JSON.parse(triggered.prop_id.split(".")[0]).index);
      }
    }
  });

  return {clamp: clamp, move: move, chipStep: chipStep, chipClasses: chipClasses, applyFrame: applyFrame,
          segmentWidths: segmentWidths, sharePosition: sharePosition};
})();
