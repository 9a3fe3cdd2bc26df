// Token graph layers. Plotly's WebGL scatter redraws every trace whenever anything changes, and on
// a software renderer 16,000 edges take about a second a draw. So plotly keeps what it does well
// and cheaply (the grey nodes, which give hover, click, wheel zoom, drag pan and the legend; the
// clicked node's few edges), and two canvases inside its plot hold the rest:
// - under the WebGL layer, the edges, redrawn only when the view moves (zoom, pan, resize, k);
// - over it, the step: node colours (the energy landscape), the path's rings, numbered arrows,
//   labels and the colour bar, redrawn on a step and when the view moves.
// Both follow the plot's axis ranges, so they stay in register with plotly's nodes.
// The step data is the "graph" entry of the page's step store (explorer/figures/graph.py, step_frames);
// the edges come with the figure (the edge trace's meta). Pages call attach(id) and show(id, frames, step).
window.brillmGraph = (function () {
  "use strict";

  var EDGES = 0, NODES = 1, PATH_TRACE = 2;  // trace order of explorer/figures/graph.py
  var PATH = "#ff7f0e";
  var VIRIDIS = ["#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d", "#2c728e", "#26828e", "#21918c",
                 "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b", "#addc30", "#d8e219", "#fde725"];
  var BUCKETS = 64, LABEL_FONT = 11, LABEL_GAP = 6;
  var steps = {};  // graph id -> {frames, step} drawn on the step layer

  function plotOf(id) {
    return document.querySelector("#" + id + " .js-plotly-plot");
  }

  // Base64 of little-endian numbers -> a typed array.
  function decode(text, Type) {
    var bin = atob(text), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }

  // Viridis at t in [0, 1] (plotly's stops, linearly interpolated).
  function viridis(t) {
    var x = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1), k = Math.min(Math.floor(x), VIRIDIS.length - 2);
    var a = VIRIDIS[k], b = VIRIDIS[k + 1], f = x - k;
    var mix = function (i) { return Math.round(parseInt(a.substr(i, 2), 16) * (1 - f) + parseInt(b.substr(i, 2), 16) * f); };
    return "rgb(" + mix(1) + "," + mix(3) + "," + mix(5) + ")";
  }

  // A canvas of the plot's size inside plotly's container, just under (below = true) or over the
  // WebGL layer, cleared and clipped to the plot area; null until plotly has drawn.
  function layer(gd, name, below) {
    var box = gd.querySelector(".svg-container"), gl = box && box.querySelector(".gl-container");
    var fl = gd._fullLayout;
    if (!gl || !fl || !fl._size) return null;
    var canvas = box.querySelector("canvas.graph-" + name);
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.className = "graph-" + name;
      canvas.style.cssText = "position:absolute;left:0;top:0;pointer-events:none";
      box.insertBefore(canvas, below ? gl : gl.nextSibling);
    }
    var ratio = window.devicePixelRatio || 1, w = fl.width, h = fl.height;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
      canvas.style.width = w + "px";
      canvas.style.height = h + "px";
    }
    var ctx = canvas.getContext("2d"), s = fl._size;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.save();
    ctx.beginPath();
    ctx.rect(s.l, s.t, s.w, s.h);
    ctx.clip();
    return ctx;
  }

  // Layout coordinates -> pixels of the plot as it is now (also while a pan or zoom is under way).
  function projector(gd) {
    var fl = gd._fullLayout, s = fl._size, xr = fl.xaxis.range, yr = fl.yaxis.range;
    var kx = s.w / (xr[1] - xr[0]), ky = s.h / (yr[1] - yr[0]);
    return {x: function (v) { return s.l + (v - xr[0]) * kx; }, y: function (v) { return s.t + (yr[1] - v) * ky; }};
  }

  function shown(trace) {
    return trace && trace.visible === true;
  }

  // The edges: the edge trace's meta holds (source, target) node pairs, int32 base64.
  function drawEdges(gd) {
    var ctx = layer(gd, "edges", true);
    if (!ctx) return;
    var trace = gd._fullData[EDGES], input = gd.data[EDGES], nodes = gd._fullData[NODES];
    if (shown(trace) && input && input.meta && input.meta.pairs && nodes) {
      if (!input.meta._pairs) input.meta._pairs = decode(input.meta.pairs, Int32Array);
      var pairs = input.meta._pairs, x = nodes.x, y = nodes.y, p = projector(gd);
      gd.drawnEdges = pairs.length / 2;
      ctx.lineWidth = trace.line.width;
      ctx.strokeStyle = trace.line.color;
      // stroked in small batches so that crossing edges darken as they do when blended one by one
      for (var start = 0; start < pairs.length; start += 400) {
        ctx.beginPath();
        for (var k = start; k < Math.min(start + 400, pairs.length); k += 2) {
          ctx.moveTo(p.x(x[pairs[k]]), p.y(y[pairs[k]]));
          ctx.lineTo(p.x(x[pairs[k + 1]]), p.y(y[pairs[k + 1]]));
        }
        ctx.stroke();
      }
    }
    ctx.restore();
    gd.layersRange = gd._fullLayout.xaxis.range.slice();
  }

  // A text on a filled box centred at (x, y); returns nothing.
  function boxedText(ctx, text, x, y, font, colour, fill, border) {
    ctx.font = font + "px sans-serif";
    var w = ctx.measureText(text).width + 2, h = font + 2;
    ctx.fillStyle = fill;
    ctx.fillRect(x - w / 2, y - h / 2, w, h);
    if (border) {
      ctx.strokeStyle = border;
      ctx.lineWidth = 1;
      ctx.strokeRect(x - w / 2 - 0.5, y - h / 2 - 0.5, w + 1, h + 1);
    }
    ctx.fillStyle = colour;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(text, x, y);
  }

  // An arrow from (x0, y0) to (x1, y1), shortened by `from` and `to` pixels, head at (x1, y1).
  function arrow(ctx, x0, y0, x1, y1, from, to) {
    var dx = x1 - x0, dy = y1 - y0, len = Math.sqrt(dx * dx + dy * dy);
    if (len < from + to + 2) return;
    var ux = dx / len, uy = dy / len, ex = x1 - ux * to, ey = y1 - uy * to, head = 9;
    ctx.beginPath();
    ctx.moveTo(x0 + ux * from, y0 + uy * from);
    ctx.lineTo(ex - ux * head * 0.8, ey - uy * head * 0.8);
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(ex, ey);
    ctx.lineTo(ex - ux * head - uy * head * 0.45, ey - uy * head + ux * head * 0.45);
    ctx.lineTo(ex - ux * head + uy * head * 0.45, ey - uy * head - ux * head * 0.45);
    ctx.closePath();
    ctx.fill();
  }

  // A tick value with enough digits to tell it from the other ticks of a span (energies near
  // 5e4 that differ by a few units need 7), at least 4.
  function number(v, span) {
    var digits = Math.ceil(Math.log10(Math.abs(v) / (span || 1) + 1)) + 3;
    return String(Number(v.toPrecision(Math.max(4, Math.min(9, digits)))));
  }

  // The step: node colours, the path's rings and arrows, labels and the colour bar. What was drawn
  // is kept on the element (gd.drawnStep) for tests and the benchmark to read.
  function drawStep(gd, id) {
    var ctx = layer(gd, "step", false);
    if (!ctx) return;
    var drawn = {step: null, labels: [], numbers: [], coloured: 0, lo: null, hi: null};
    var state = steps[id], nodes = gd._fullData[NODES];
    if (state && nodes && nodes.x && nodes.x.length === state.frames.vocab) {
      var f = state.frames, s = state.step, V = f.vocab, p = projector(gd), x = nodes.x, y = nodes.y;
      if (!f._energies) f._energies = decode(f.energies, Float32Array);
      var row = f._energies.subarray(s * V, (s + 1) * V), lo = f.range[s][0], hi = f.range[s][1];
      drawn.step = s;
      drawn.lo = lo;
      drawn.hi = hi;
      // hover shows this step's energy (read from the trace plotly hovers, no redraw)
      nodes.customdata = row;
      nodes.hovertemplate = f.hover;
      if (shown(nodes)) {
        var buckets = [];
        for (var b = 0; b < BUCKETS; b++) buckets.push([]);
        for (var i = 0; i < V; i++) {
          if (!isFinite(row[i])) continue;  // not a candidate (a barred self-loop): stays grey
          buckets[Math.max(0, Math.min(BUCKETS - 1, Math.round((row[i] - lo) / (hi - lo) * (BUCKETS - 1))))].push(i);
        }
        var r = nodes.marker.size / 2;
        buckets.forEach(function (members, b) {  // highest energies drawn last, on top
          if (!members.length) return;
          ctx.fillStyle = viridis(b / (BUCKETS - 1));
          ctx.beginPath();
          members.forEach(function (n) {
            var px = p.x(x[n]), py = p.y(y[n]);
            ctx.moveTo(px + r, py);
            ctx.arc(px, py, r, 0, 2 * Math.PI);
          });
          ctx.fill();
          drawn.coloured += members.length;
        });
      }
      if (shown(gd._fullData[PATH_TRACE])) {
        var path = f.path.slice(0, s + 2), seen = {};
        ctx.strokeStyle = PATH;
        ctx.fillStyle = PATH;
        ctx.lineWidth = 2.5;
        path.forEach(function (n) {
          ctx.beginPath();
          ctx.arc(p.x(x[n]), p.y(y[n]), 5.5, 0, 2 * Math.PI);
          ctx.stroke();
        });
        ctx.lineWidth = 2;
        for (var k = 0; k + 1 < path.length; k++) {
          arrow(ctx, p.x(x[path[k]]), p.y(y[path[k]]), p.x(x[path[k + 1]]), p.y(y[path[k + 1]]), 4, 5);
        }
        for (k = 0; k + 1 < path.length; k++) {  // step k's number at its arrow's middle, repeats stacked
          var edge = path[k] + ">" + path[k + 1], above = seen[edge] || 0;
          seen[edge] = above + 1;
          boxedText(ctx, String(k), (p.x(x[path[k]]) + p.x(x[path[k + 1]])) / 2,
                    (p.y(y[path[k]]) + p.y(y[path[k + 1]])) / 2 - 14 * above, 10, "#7a3c00", "rgba(255,255,255,0.85)", PATH);
          drawn.numbers.push(String(k));
        }
      }
      var shift = LABEL_GAP / 2 + (LABEL_FONT + LABEL_GAP) / 2;
      f.labels[s].forEach(function (n) {
        boxedText(ctx, nodes.text[n], p.x(x[n]), p.y(y[n]) - shift, LABEL_FONT, "#111", "rgba(255,255,255,0.75)", null);
        drawn.labels.push(nodes.text[n]);
      });
    }
    ctx.restore();
    if (drawn.step !== null) colourBar(ctx, gd._fullLayout._size, drawn.lo, drawn.hi);
    gd.drawnStep = drawn;
  }

  // The energy colour bar in the plot's right margin.
  function colourBar(ctx, size, lo, hi) {
    var w = 12, h = size.h * 0.55, x = size.l + size.w + 10, y = size.t + size.h * 0.22;
    var gradient = ctx.createLinearGradient(0, y + h, 0, y);
    VIRIDIS.forEach(function (c, k) { gradient.addColorStop(k / (VIRIDIS.length - 1), c); });
    ctx.fillStyle = gradient;
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = "#333";
    ctx.font = "11px sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillText("energy", x - 2, y - 14);
    [[hi, y], [(lo + hi) / 2, y + h / 2], [lo, y + h]].forEach(function (tick) {
      ctx.fillText(number(tick[0], hi - lo), x + w + 4, tick[1]);
    });
  }

  function redraw(gd, id) {
    drawEdges(gd);
    drawStep(gd, id);
  }

  // Follow the plot: a new figure, a zoom or pan (also while under way), a legend click, a resize.
  function bind(gd, id) {
    if (gd.graphLayers) return;
    gd.graphLayers = true;
    var again = function () { redraw(gd, id); };
    ["plotly_afterplot", "plotly_relayout", "plotly_relayouting", "plotly_restyle", "plotly_redraw"].forEach(function (name) {
      gd.on(name, again);
    });
  }

  // Draw the layers of graph `id` as soon as plotly has drawn it, and follow it from then on.
  function attach(id, tries) {
    var gd = plotOf(id);
    if (gd && gd._fullLayout && gd.on) {
      bind(gd, id);
      redraw(gd, id);
    } else if ((tries || 0) < 600) {
      window.requestAnimationFrame(function () { attach(id, (tries || 0) + 1); });
    }
  }

  return {
    attach: attach,
    // Step `step` of a trace's frames on graph `id` (frames null: no trace, no step drawn).
    show: function (id, frames, step) {
      if (frames) steps[id] = {frames: frames, step: step}; else delete steps[id];
      var gd = plotOf(id);
      if (gd && gd._fullLayout) drawStep(gd, id); else attach(id);
    }
  };
})();

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  graph_layers: {
    // A new figure on a graph with layers: bind them to its plot (the figure itself is plotly's).
    attach: function (_figure, id) {
      window.brillmGraph.attach(id);
      return window.dash_clientside.no_update;
    }
  }
});
