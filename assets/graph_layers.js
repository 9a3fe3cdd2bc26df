// Token graph layers. Plotly's WebGL scatter redraws every trace whenever anything changes, on a
// software renderer 16,000 edges take about a second a draw, and even its first draw of the 4,000
// nodes alone takes about half of one. So plotly draws only what is small (the legend, the axes'
// ranges that wheel zoom and drag pan move, the clicked node's few edges, in SVG), and two canvases
// inside its plot hold the graph:
// - the base: the edges and the grey nodes, redrawn only when the view moves (zoom, pan, resize, k);
// - over it, the step: node colours (the energy landscape), the path's rings, numbered arrows,
//   labels and the colour bar, redrawn on a step and when the view moves.
// Both follow the plot's axis ranges. Hover and click are found here too: the node nearest the
// mouse (within HOVER_PX) gets a tooltip, and a click on it is given to Dash as the graph's clickData.
// The nodes (positions and texts) and the edges come with the figure (the node and edge traces' meta,
// explorer/figures/graph.py); the step data is the "graph" entry of the page's step store (step_frames).
// Pages call attach(id) and show(id, frames, step).
window.brillmGraph = (function () {
  "use strict";

  var EDGES = 0, NODES = 1, PATH_TRACE = 2, OUT_EDGES = 3, IN_EDGES = 4, MARKS = 5;  // trace order of explorer/figures/graph.py
  var PATH = "#ff7f0e";
  var VIRIDIS = ["#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d", "#2c728e", "#26828e", "#21918c",
                 "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b", "#addc30", "#d8e219", "#fde725"];
  var BUCKETS = 64, LABEL_FONT = 11, LABEL_GAP = 6;
  var HOVER_PX = 20;  // plotly's hover distance: the nearest node this close to the mouse is hovered
  var MINDRAG = 8;  // plotly's: a mouse that moved less between press and release clicked (else it panned)
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
    return window.brillmColor.scale(VIRIDIS, t);
  }

  // A canvas of the plot's size inside plotly's container, over its background and SVG traces and
  // under its legend (the base under the step), cleared and clipped to the plot area; null until
  // plotly has drawn.
  function layer(gd, name) {
    var box = gd.querySelector(".svg-container"), paper = box && box.querySelector(".main-svg");
    var fl = gd._fullLayout;
    if (!paper || !fl || !fl._size) return null;
    var canvas = box.querySelector("canvas.graph-" + name);
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.className = "graph-" + name;
      canvas.style.cssText = "position:absolute;left:0;top:0;pointer-events:none";
      var base = name === "step" && box.querySelector("canvas.graph-base");
      box.insertBefore(canvas, (base || paper).nextSibling);
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

  // The figure's nodes, decoded once per figure: {x, y} (float32 layout coordinates), text, radius
  // (px), colour; null if the figure has none (a placeholder).
  function nodesOf(gd) {
    var input = gd.data && gd.data[NODES], full = gd._fullData && gd._fullData[NODES];
    if (!input || !input.meta || !input.meta.x || !full) return null;
    if (!input.meta._nodes) {
      var x = decode(input.meta.x, Float32Array), all = new Int32Array(x.length);
      for (var n = 0; n < all.length; n++) all[n] = n;
      input.meta._nodes = {x: x, y: decode(input.meta.y, Float32Array), text: input.meta.text, all: all,
                           r: full.marker.size / 2, colour: full.marker.color};
    }
    return input.meta._nodes;
  }

  // Step s's energies of every node (float32, NaN: not a candidate), decoded once per trace.
  function energies(frames, s) {
    if (!frames._energies) frames._energies = decode(frames.energies, Float32Array);
    return frames._energies.subarray(s * frames.vocab, (s + 1) * frames.vocab);
  }

  // Circles of radius r at the given nodes, as one path filled in one colour.
  function dots(ctx, nodes, members, p, r, colour) {
    ctx.fillStyle = colour;
    ctx.beginPath();
    for (var k = 0; k < members.length; k++) {
      var px = p.x(nodes.x[members[k]]), py = p.y(nodes.y[members[k]]);
      ctx.moveTo(px + r, py);
      ctx.arc(px, py, r, 0, 2 * Math.PI);
    }
    ctx.fill();
  }

  // The base: the edges (the edge trace's meta holds their (source, target) node pairs, int32
  // base64) and over them the grey nodes.
  function drawBase(gd) {
    var ctx = layer(gd, "base");
    if (!ctx) return;
    var trace = gd._fullData[EDGES], input = gd.data[EDGES], nodes = nodesOf(gd), p = projector(gd);
    if (nodes && shown(trace) && input.meta && input.meta.pairs) {
      if (!input.meta._pairs) input.meta._pairs = decode(input.meta.pairs, Int32Array);
      var pairs = input.meta._pairs, x = nodes.x, y = nodes.y;
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
    if (nodes && shown(gd._fullData[NODES])) {
      dots(ctx, nodes, nodes.all, p, nodes.r, nodes.colour);
      gd.drawnNodes = nodes.all.length;
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

  // The selected node's strongest out- and in-edges (lines, NaN between edges) and its ring, in
  // their traces' styles, from their traces' meta (float32 base64).
  function drawSelection(ctx, gd) {
    var p = projector(gd);
    [OUT_EDGES, IN_EDGES, MARKS].forEach(function (k) {
      var trace = gd._fullData[k], meta = gd.data[k] && gd.data[k].meta;
      if (!shown(trace) || !meta || !meta.x) return;
      if (!meta._x) {
        meta._x = decode(meta.x, Float32Array);
        meta._y = decode(meta.y, Float32Array);
      }
      var x = meta._x, y = meta._y, ring = k === MARKS, line = ring ? trace.marker.line : trace.line;
      ctx.strokeStyle = line.color;
      ctx.lineWidth = line.width;
      ctx.beginPath();
      for (var i = 0; i < x.length; i++) {
        if (!isFinite(x[i])) continue;
        var px = p.x(x[i]), py = p.y(y[i]);
        if (ring) {
          ctx.moveTo(px + trace.marker.size / 2, py);
          ctx.arc(px, py, trace.marker.size / 2, 0, 2 * Math.PI);
        } else if (i === 0 || !isFinite(x[i - 1])) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      }
      ctx.stroke();
    });
  }

  // The step layer: the selection under the step's node colours, the path's rings and arrows, labels
  // and the colour bar. What was drawn is kept on the element (gd.drawnStep) for tests and the benchmark to read.
  function drawStep(gd, id) {
    var ctx = layer(gd, "step");
    if (!ctx) return;
    drawSelection(ctx, gd);
    var drawn = {step: null, labels: [], numbers: [], coloured: 0, lo: null, hi: null};
    var state = steps[id], nodes = nodesOf(gd);
    if (state && nodes && nodes.x.length === state.frames.vocab) {
      var f = state.frames, s = state.step, p = projector(gd), x = nodes.x, y = nodes.y;
      var row = energies(f, s), lo = f.range[s][0], hi = f.range[s][1];
      drawn.step = s;
      drawn.lo = lo;
      drawn.hi = hi;
      if (shown(gd._fullData[NODES])) {
        var buckets = [];
        for (var b = 0; b < BUCKETS; b++) buckets.push([]);
        for (var i = 0; i < row.length; i++) {
          if (!isFinite(row[i])) continue;  // not a candidate (a barred self-loop): stays grey
          buckets[Math.max(0, Math.min(BUCKETS - 1, Math.round((row[i] - lo) / (hi - lo) * (BUCKETS - 1))))].push(i);
        }
        buckets.forEach(function (members, b) {  // highest energies drawn last, on top
          if (!members.length) return;
          dots(ctx, nodes, members, p, nodes.r, viridis(b / (BUCKETS - 1)));
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
    if (gd.hoveredNode >= 0) hover(gd, id, gd.hoveredNode);
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
    drawBase(gd);
    drawStep(gd, id);
  }

  // The mouse's place in pixels of the plot.
  function mouseAt(gd, ev) {
    var box = gd.getBoundingClientRect();
    return [ev.clientX - box.left, ev.clientY - box.top];
  }

  // The node nearest to pixel (px, py) of the plot area within HOVER_PX, or -1 (also while the nodes are hidden).
  function nodeAt(gd, px, py) {
    var nodes = nodesOf(gd), s = gd._fullLayout && gd._fullLayout._size;
    if (!nodes || !s || !shown(gd._fullData[NODES]) || px < s.l || px > s.l + s.w || py < s.t || py > s.t + s.h) return -1;
    var p = projector(gd), best = -1, nearest = HOVER_PX * HOVER_PX;
    for (var n = 0; n < nodes.x.length; n++) {
      var dx = p.x(nodes.x[n]) - px, dy = p.y(nodes.y[n]) - py;
      if (dx * dx + dy * dy < nearest) {
        nearest = dx * dx + dy * dy;
        best = n;
      }
    }
    return best;
  }

  // The tooltip of node n beside it: its text and, with a step drawn, its energy at that step
  // (n = -1: none). The hovered node is kept on the element (gd.hoveredNode).
  function hover(gd, id, n) {
    var box = gd.querySelector(".svg-container"), tip = box && box.querySelector(".graph-hover"), nodes = nodesOf(gd);
    gd.hoveredNode = box && nodes && n >= 0 && n < nodes.x.length ? n : -1;
    if (gd.hoveredNode < 0) {
      if (tip) tip.style.display = "none";
      return;
    }
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "graph-hover";
      box.appendChild(tip);
    }
    var state = steps[id], p = projector(gd), lines = [nodes.text[n]];
    if (state && state.frames.vocab === nodes.x.length) {
      var v = energies(state.frames, state.step)[n];
      lines.push("energy at this step: " + (isFinite(v) ? v.toPrecision(5) : "–"));
    }
    tip.textContent = "";
    lines.forEach(function (line, k) {  // text nodes: a token's text is never read as markup
      if (k) tip.appendChild(document.createElement("br"));
      tip.appendChild(document.createTextNode(line));
    });
    tip.style.display = "block";
    var px = p.x(nodes.x[n]), left = px + nodes.r + 6;
    if (left + tip.offsetWidth > gd._fullLayout.width) left = px - nodes.r - 6 - tip.offsetWidth;
    tip.style.left = left + "px";
    tip.style.top = (p.y(nodes.y[n]) - tip.offsetHeight / 2) + "px";
  }

  // A press on the plot area (plotly's drag layer) that is released within MINDRAG px is a click:
  // on a node, it becomes the graph's clickData (what plotly would send), which the page reads.
  var pressed = null;  // {gd, id, x, y} of the press being held
  document.addEventListener("mouseup", function (ev) {
    var down = pressed;
    pressed = null;
    if (!down || ev.button !== 0 || ev.detail > 1) return;  // a double click resets the axes (plotly)
    if (Math.abs(ev.clientX - down.x) >= MINDRAG || Math.abs(ev.clientY - down.y) >= MINDRAG) return;  // a pan
    var at = mouseAt(down.gd, ev), n = nodeAt(down.gd, at[0], at[1]), nodes = nodesOf(down.gd);
    if (n < 0) return;
    hover(down.gd, down.id, n);
    window.dash_clientside.set_props(down.id, {clickData: {points: [{curveNumber: NODES, pointNumber: n, pointIndex: n,
                                                                     x: nodes.x[n], y: nodes.y[n], text: nodes.text[n]}]}});
  }, true);

  // Follow the plot: a new figure, a zoom or pan (also while under way), a legend click, a resize;
  // and the mouse: hover and click.
  function bind(gd, id) {
    if (gd.graphLayers) return;
    gd.graphLayers = true;
    var again = function () { redraw(gd, id); };
    ["plotly_afterplot", "plotly_relayout", "plotly_relayouting", "plotly_restyle", "plotly_redraw"].forEach(function (name) {
      gd.on(name, again);
    });
    gd.addEventListener("mousemove", function (ev) {
      if (pressed) return;  // a pan under way
      var at = mouseAt(gd, ev), n = nodeAt(gd, at[0], at[1]);
      if (n !== gd.hoveredNode) hover(gd, id, n);
    });
    gd.addEventListener("mouseleave", function () { hover(gd, id, -1); });
    gd.addEventListener("mousedown", function (ev) {
      var onPlot = ev.button === 0 && ev.target.classList && ev.target.classList.contains("nsewdrag");
      pressed = onPlot ? {gd: gd, id: id, x: ev.clientX, y: ev.clientY} : null;
      hover(gd, id, -1);
    }, true);
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
