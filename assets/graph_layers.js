// Token graph layers. Plotly's WebGL scatter redraws every trace whenever anything changes, on a
// software renderer 16,000 edges take about a second a draw, and even its first draw of the 4,000
// nodes alone takes about half of one. So plotly draws only what is small (the legend, the axes'
// ranges that wheel zoom and drag pan move), and two canvases inside its plot hold the graph:
// - the base: the edges, the grey nodes and the caption of the set-aside tokens, redrawn only when
//   the picture or the view changes (zoom, pan, resize, k, a hidden layer);
// - over it, the step: the clicked node's strongest edges and ring, node colours (the energy
//   landscape), the path's rings and numbered arrows, labels and the colour bar, redrawn on a step,
//   a click and when the view moves.
// Both follow the plot's axis ranges. Hover and click are found here too: the node nearest the
// mouse (within HOVER_PX) gets a tooltip, and a click on it is given to Dash as the graph's clickData.
// The nodes (positions, texts, label ranking), the edges and the selection come with the figure (the
// traces' meta, explorer/figures/graph.py); the step data is the "graph" entry of the page's step
// store (step_frames). Decoded arrays are kept by the text they were decoded from, never on an object
// of the figure (plotly carries underscored keys over from one figure to the next); a step and a
// selection are drawn only over the picture they name. Pages call attach(id) and show(id, frames, step).
window.brillmGraph = (function () {
  "use strict";

  var EDGES = 0, NODES = 1, PATH_TRACE = 2, OUT_EDGES = 3, IN_EDGES = 4, MARKS = 5;  // trace order of explorer/figures/graph.py
  var PATH = "#ff7f0e";
  var VIRIDIS = ["#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d", "#2c728e", "#26828e", "#21918c",
                 "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b", "#addc30", "#d8e219", "#fde725"];
  var BUCKETS = 64, LABEL_FONT = 11, LABEL_PAD = 2, LABEL_GAP = 3;
  var MAX_LABELS = 40;  // labels off the path at any zoom: zooming in gives them to fewer, closer nodes
  var PATH_RING = 5.5, LOOP = 9;  // px: a path node's ring; half a self-loop's height
  var BEND = 0.12, MIN_BEND = 8, MAX_BEND = 24;  // an arrow's bend: a share of its length, in px at least and at most
  var HOVER_PX = 20;  // plotly's hover distance: the nearest node this close to the mouse is hovered
  var MINDRAG = 8;  // plotly's: a mouse that moved less between press and release clicked (else it panned)
  var KEEP = 16;  // decoded arrays kept (a page on screen uses about six)
  var steps = {};  // graph id -> {frames, step} drawn on the step layer
  var selections = {};  // graph id -> the selected node and its strongest edges (explorer/figures/graph.py's selection)
  var decoded = new Map();  // base64 text -> its typed array
  var widths = new Map();  // label text -> its width in px

  function plotOf(id) {
    return document.querySelector("#" + id + " .js-plotly-plot");
  }

  // Base64 of little-endian numbers -> a typed array, decoded once per text.
  function decode(text, Type) {
    var hit = decoded.get(text);
    if (hit instanceof Type) return hit;
    var bin = atob(text), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var value = new Type(bytes.buffer);
    decoded.set(text, value);
    if (decoded.size > KEEP) decoded.delete(decoded.keys().next().value);
    return value;
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

  // The plot area in pixels: {l, t, r, b}.
  function area(gd) {
    var s = gd._fullLayout._size;
    return {l: s.l, t: s.t, r: s.l + s.w, b: s.t + s.h};
  }

  function shown(trace) {
    return !!trace && trace.visible === true;
  }

  // `figure` with the selection's legend entries (`names`: out-edges, in-edges, ring; a gap point
  // each with a node, no point without), or null when it has them already or is another picture's.
  function withLegend(figure, selection) {
    var data = figure && figure.data, nodes = data && data[NODES] && data[NODES].meta;
    if (!nodes || !selection || nodes.picture !== selection.picture) return null;
    var point = selection.node >= 0 ? [null] : [], traces = [OUT_EDGES, IN_EDGES, MARKS];
    var changed = traces.some(function (k, i) {
      return data[k].name !== selection.names[i] || (data[k].x || []).length !== point.length;
    });
    if (!changed) return null;
    data = data.slice();
    traces.forEach(function (k, i) { data[k] = Object.assign({}, data[k], {name: selection.names[i], x: point, y: point}); });
    return Object.assign({}, figure, {data: data});
  }

  // The figure's nodes: picture (its identity), x and y (float32 layout coordinates), text, rank (the
  // label order off the path), aside (the set-aside block's caption), radius (px), colour; null if
  // the figure has none (a placeholder).
  function nodesOf(gd) {
    var meta = gd.data && gd.data[NODES] && gd.data[NODES].meta, full = gd._fullData && gd._fullData[NODES];
    if (!meta || !meta.x || !full) return null;
    return {picture: meta.picture, x: decode(meta.x, Float32Array), y: decode(meta.y, Float32Array), text: meta.text,
            rank: decode(meta.rank, Int32Array), aside: meta.aside, r: full.marker.size / 2, colour: full.marker.color};
  }

  // Step s's energies of every node (float32, NaN: not a candidate).
  function energies(frames, s) {
    return decode(frames.energies, Float32Array).subarray(s * frames.vocab, (s + 1) * frames.vocab);
  }

  // The step drawn over graph `id`, if it was made for the picture on screen.
  function stepOver(id, nodes) {
    var state = steps[id];
    return state && nodes && state.frames.picture === nodes.picture ? state : null;
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

  // Whether two lists hold the same values (=== one by one).
  function same(a, b) {
    if (!a || !b || a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  // The base: the edges (the edge trace's meta holds their (source, target) node pairs, int32
  // base64), the grey nodes over them and the set-aside block's caption; drawn again only when
  // something it shows has changed.
  function drawBase(gd) {
    var fl = gd._fullLayout, nodes = nodesOf(gd), trace = gd._fullData[EDGES], meta = gd.data[EDGES] && gd.data[EDGES].meta;
    var box = gd.querySelector(".svg-container"), canvas = box && box.querySelector("canvas.graph-base");
    var key = [canvas, nodes && nodes.x, nodes && nodes.y, meta && meta.pairs, shown(trace), shown(gd._fullData[NODES]),
               fl.xaxis.range[0], fl.xaxis.range[1], fl.yaxis.range[0], fl.yaxis.range[1], fl.width, fl.height,
               window.devicePixelRatio];
    if (same(key, gd.baseKey)) return;
    var ctx = layer(gd, "base");
    if (!ctx) return;
    var p = projector(gd), drawn = {picture: nodes && nodes.picture, nodes: 0, edges: 0, x: nodes && nodes.x, y: nodes && nodes.y};
    if (nodes && shown(trace) && meta && meta.pairs) {
      var pairs = decode(meta.pairs, Int32Array), x = nodes.x, y = nodes.y;
      drawn.edges = pairs.length / 2;
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
      var all = new Int32Array(nodes.x.length);
      for (var n = 0; n < all.length; n++) all[n] = n;
      dots(ctx, nodes, all, p, nodes.r, nodes.colour);
      drawn.nodes = all.length;
      var caption = captionBox(ctx, nodes, p);
      if (caption) {
        ctx.fillStyle = "#555";
        ctx.font = LABEL_FONT + "px sans-serif";
        ctx.textAlign = "left";
        ctx.textBaseline = "bottom";
        ctx.fillText(nodes.aside.text, caption.l, caption.b);
      }
    }
    ctx.restore();
    gd.baseKey = [box.querySelector("canvas.graph-base")].concat(key.slice(1));
    gd.drawnBase = drawn;
    gd.drawnNodes = drawn.nodes;
    gd.drawnEdges = drawn.edges;
    gd.layersRange = fl.xaxis.range.slice();
  }

  // The box in pixels of the set-aside block's caption, written above the block's top left; null if none.
  function captionBox(ctx, nodes, p) {
    if (!nodes.aside) return null;
    var l = p.x(nodes.aside.x) - nodes.r, b = p.y(nodes.aside.y) - nodes.r - 4;
    return {l: l, t: b - LABEL_FONT - 2, r: l + textWidth(ctx, nodes.aside.text), b: b};
  }

  // A text on a filled box centred at (x, y).
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

  // The shape of the path's arrow from node (x0, y0) to node (x1, y1) in pixels: a curve bent to one
  // side (so that the arrows of a -> b and b -> a do not cover each other, and two nodes drawn close
  // together still get an arrow to see), or a loop above the node when both are one. Returns its
  // start and end (`from` and `to` px off the nodes), its control point (a quadratic curve), the
  // direction of its head (a unit vector) and its middle, where the step's number goes.
  function arrowShape(x0, y0, x1, y1, from, to) {
    var dx = x1 - x0, dy = y1 - y0, len = Math.sqrt(dx * dx + dy * dy), start, control, end;
    if (len < 1e-6) {  // a self-loop, out of the node's top left and back into its top right
      control = [x0, y0 - 4 * LOOP];  // the curve rises 2 * LOOP
      start = [x0 - from * 0.7071, y0 - from * 0.7071];
      end = [x0 + to * 0.7071, y0 - to * 0.7071];
    } else {
      var bend = Math.min(MAX_BEND, Math.max(MIN_BEND, BEND * len));  // the curve's greatest distance from the straight line
      control = [(x0 + x1) / 2 + dy / len * bend * 2, (y0 + y1) / 2 - dx / len * bend * 2];
      start = toward([x0, y0], control, from);
      end = toward([x1, y1], control, to);
    }
    var hx = end[0] - control[0], hy = end[1] - control[1], hl = Math.sqrt(hx * hx + hy * hy) || 1;
    return {start: start, control: control, end: end, head: [hx / hl, hy / hl],
            middle: [0.25 * start[0] + 0.5 * control[0] + 0.25 * end[0], 0.25 * start[1] + 0.5 * control[1] + 0.25 * end[1]]};
  }

  // The point `by` px from `a` toward `b`.
  function toward(a, b, by) {
    var dx = b[0] - a[0], dy = b[1] - a[1], len = Math.sqrt(dx * dx + dy * dy) || 1;
    return [a[0] + dx / len * by, a[1] + dy / len * by];
  }

  // Draw an arrowShape: the curve and a filled head at its end.
  function drawArrow(ctx, shape) {
    var e = shape.end, u = shape.head, head = 8;
    ctx.beginPath();
    ctx.moveTo(shape.start[0], shape.start[1]);
    ctx.quadraticCurveTo(shape.control[0], shape.control[1], e[0] - u[0] * head * 0.8, e[1] - u[1] * head * 0.8);
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(e[0], e[1]);
    ctx.lineTo(e[0] - u[0] * head - u[1] * head * 0.45, e[1] - u[1] * head + u[0] * head * 0.45);
    ctx.lineTo(e[0] - u[0] * head + u[1] * head * 0.45, e[1] - u[1] * head - u[0] * head * 0.45);
    ctx.closePath();
    ctx.fill();
  }

  // A tick value with enough digits to tell it from the other ticks of a span (energies near
  // 5e4 that differ by a few units need 7), at least 4.
  function number(v, span) {
    var digits = Math.ceil(Math.log10(Math.abs(v) / (span || 1) + 1)) + 3;
    return String(Number(v.toPrecision(Math.max(4, Math.min(9, digits)))));
  }

  // A float32 written back exactly, as the bars' hover writes it (9 significant digits, no trailing zeros).
  function exact(v) {
    return String(Number(v.toPrecision(9)));
  }

  // The hover's lines for a node: its text, and with a step its energy there (float32, exact) and
  // the difference to the step's best, as the Signal path's bars give them.
  function hoverLines(text, energy, best) {
    if (energy === undefined) return [text];
    if (!isFinite(energy)) return [text, "energy at this step: – (not a candidate)"];
    var d = energy - best, fixed = Math.abs(d).toFixed(4).replace(/\.?0+$/, "");
    return [text, "energy at this step: " + exact(energy),
            d === 0 ? "the step's best" : (d < 0 ? "−" : "+") + fixed + " from the step's best"];
  }

  // The boxes around a node of size w x h where its label may go, in the order they are tried: above,
  // below, right, left; each {l, t, r, b} in pixels, `off` px from the node's centre.
  function labelSpots(x, y, w, h, off) {
    return [{l: x - w / 2, t: y - off - h, r: x + w / 2, b: y - off}, {l: x - w / 2, t: y + off, r: x + w / 2, b: y + off + h},
            {l: x + off, t: y - h / 2, r: x + off + w, b: y + h / 2}, {l: x - off - w, t: y - h / 2, r: x - off, b: y + h / 2}];
  }

  function overlap(a, b) {
    return a.l < b.r && b.l < a.r && a.t < b.b && b.t < a.b;
  }

  // Labels placed in the order of `candidates` ({node, x, y: the node's pixel, w, h: its label's
  // size, off: its distance from the node, must: a path node}): each in the first of its spots
  // (labelSpots) inside `box` that overlaps no label placed before nor any of `obstacles` (boxes);
  // a must with no free spot goes above its node all the same. At most `budget` labels besides the
  // musts. Returns [{node, box}].
  function placeLabels(candidates, box, budget, obstacles) {
    var placed = [], taken = (obstacles || []).slice(), extra = 0;
    for (var i = 0; i < candidates.length; i++) {
      var c = candidates[i];
      if (!c.must && extra >= budget) break;
      var spots = labelSpots(c.x, c.y, c.w, c.h, c.off), chosen = null;
      for (var k = 0; k < spots.length && !chosen; k++) {
        var spot = spots[k];
        if (spot.l < box.l || spot.r > box.r || spot.t < box.t || spot.b > box.b) continue;
        if (!taken.some(function (other) { return overlap(spot, other); })) chosen = spot;
      }
      if (!chosen && c.must) chosen = spots[0];
      if (!chosen) continue;
      placed.push({node: c.node, box: chosen});
      taken.push(chosen);
      if (!c.must) extra++;
    }
    return placed;
  }

  // The nodes in the order they get a label: the path so far (all labelled), the step's ranking from
  // the server, then the figure's; each once, only those inside `box`.
  function labelOrder(path, ranked, rank, inView) {
    var seen = {}, order = [];
    [path, ranked, rank].forEach(function (list) {
      for (var i = 0; i < list.length; i++) {
        var n = list[i];
        if (seen[n] || !inView(n)) continue;
        seen[n] = true;
        order.push(n);
      }
    });
    return order;
  }

  // A label's width in px (measured once per text).
  function textWidth(ctx, text) {
    var w = widths.get(text);
    if (w === undefined) {
      ctx.font = LABEL_FONT + "px sans-serif";
      w = ctx.measureText(text).width;
      widths.set(text, w);
    }
    return w;
  }

  // The labels of the view on screen: candidates placed without overlap, the path's first; their
  // boxes avoid the path's rings and the set-aside block's caption. Returns [{node, box}].
  function labelsOf(ctx, gd, nodes, p, path, ranked) {
    var box = area(gd), x = nodes.x, y = nodes.y, onPath = {};
    path.forEach(function (n) { onPath[n] = true; });
    var inView = function (n) {
      var px = p.x(x[n]), py = p.y(y[n]);
      return px >= box.l && px <= box.r && py >= box.t && py <= box.b;
    };
    var rings = path.filter(inView).map(function (n) {
      var px = p.x(x[n]), py = p.y(y[n]);
      return {l: px - PATH_RING, t: py - PATH_RING, r: px + PATH_RING, b: py + PATH_RING};
    });
    var caption = captionBox(ctx, nodes, p);
    if (caption) rings.push(caption);
    var candidates = labelCandidates(ctx, labelOrder(path, ranked, nodes.rank, inView), nodes, p, onPath);
    return placeLabels(candidates, box, MAX_LABELS, rings);
  }

  // The candidates for placeLabels, in `order`. A label's width is measured only when placeLabels comes
  // to it: it stops after its budget, and measuring every node in view took most of a first draw (0.9 s
  // for 4,000 nodes).
  function labelCandidates(ctx, order, nodes, p, onPath) {
    var off = Math.max(nodes.r, PATH_RING) + LABEL_GAP;
    return order.map(function (n) {
      return {node: n, x: p.x(nodes.x[n]), y: p.y(nodes.y[n]), h: LABEL_FONT + 2 * LABEL_PAD, off: off,
              must: !!onPath[n], get w() { return textWidth(ctx, nodes.text[n]) + 2 * LABEL_PAD; }};
    });
  }

  // The selected node's strongest out- and in-edges and its ring, in the styles of their traces;
  // what was drawn, or null (no selection, or one made for another picture).
  function drawSelection(ctx, gd, id, nodes, p) {
    var meta = selections[id];
    if (!nodes || !meta || !(meta.node >= 0) || meta.picture !== nodes.picture) return null;
    var n = meta.node, x = nodes.x, y = nodes.y, px = p.x(x[n]), py = p.y(y[n]);
    [[OUT_EDGES, meta.out], [IN_EDGES, meta.in]].forEach(function (edges) {
      var trace = gd._fullData[edges[0]];
      if (!shown(trace)) return;
      ctx.strokeStyle = trace.line.color;
      ctx.lineWidth = trace.line.width;
      ctx.beginPath();
      edges[1].forEach(function (m) {
        ctx.moveTo(px, py);
        ctx.lineTo(p.x(x[m]), p.y(y[m]));
      });
      ctx.stroke();
    });
    var ring = gd._fullData[MARKS];
    if (shown(ring)) {
      ctx.strokeStyle = ring.marker.line.color;
      ctx.lineWidth = ring.marker.line.width;
      ctx.beginPath();
      ctx.arc(px, py, ring.marker.size / 2, 0, 2 * Math.PI);
      ctx.stroke();
    }
    return {node: n, out: meta.out.slice(), in: meta.in.slice()};
  }

  // The path so far: its nodes' rings and its numbered arrows; the numbers written.
  function drawPath(ctx, nodes, p, path) {
    var x = nodes.x, y = nodes.y, seen = {}, numbers = [], arrows = 0;
    ctx.strokeStyle = PATH;
    ctx.fillStyle = PATH;
    ctx.lineWidth = 2.5;
    path.forEach(function (n) {
      ctx.beginPath();
      ctx.arc(p.x(x[n]), p.y(y[n]), PATH_RING, 0, 2 * Math.PI);
      ctx.stroke();
    });
    ctx.lineWidth = 2;
    var shapes = [];
    for (var k = 0; k + 1 < path.length; k++) {
      shapes.push(arrowShape(p.x(x[path[k]]), p.y(y[path[k]]), p.x(x[path[k + 1]]), p.y(y[path[k + 1]]), PATH_RING, PATH_RING + 1));
      drawArrow(ctx, shapes[k]);
      arrows++;
    }
    shapes.forEach(function (shape, k) {  // step k's number at its arrow's middle, repeats stacked
      var edge = path[k] + ">" + path[k + 1], above = seen[edge] || 0;
      seen[edge] = above + 1;
      boxedText(ctx, String(k), shape.middle[0], shape.middle[1] - 14 * above, 10, "#7a3c00", "rgba(255,255,255,0.85)", PATH);
      numbers.push(String(k));
    });
    return {numbers: numbers, arrows: arrows};
  }

  // The step layer: the selection under the step's node colours, the path's rings and arrows, labels
  // and the colour bar. What was drawn is kept on the element (gd.drawnStep) for tests and the benchmark to read.
  function drawStep(gd, id) {
    var ctx = layer(gd, "step");
    if (!ctx) return;
    var nodes = nodesOf(gd), p = projector(gd), state = stepOver(id, nodes);
    var drawn = {step: null, labels: [], boxes: [], numbers: [], arrows: 0, coloured: 0, lo: null, hi: null,
                 selection: drawSelection(ctx, gd, id, nodes, p), picture: nodes && nodes.picture};
    var path = [], ranked = [];
    if (state) {
      var f = state.frames, s = state.step, row = energies(f, s), lo = f.range[s][0], hi = f.range[s][1];
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
      path = f.path.slice(0, s + 2);
      ranked = f.labels[s];
      if (shown(gd._fullData[PATH_TRACE])) {
        var arrows = drawPath(ctx, nodes, p, path);
        drawn.numbers = arrows.numbers;
        drawn.arrows = arrows.arrows;
      }
    }
    if (nodes) {
      labelsOf(ctx, gd, nodes, p, path.slice().reverse(), ranked).forEach(function (label) {
        var b = label.box;
        boxedText(ctx, nodes.text[label.node], (b.l + b.r) / 2, (b.t + b.b) / 2, LABEL_FONT, "#111", "rgba(255,255,255,0.75)", null);
        drawn.labels.push(nodes.text[label.node]);
        drawn.boxes.push([b.l, b.t, b.r, b.b]);
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

  // The index of the point nearest to pixel (px, py) within `radius` px, -1 if none; x and y are
  // layout coordinates, p the projection to pixels.
  function nearest(x, y, p, px, py, radius) {
    var best = -1, nearestSq = radius * radius;
    for (var n = 0; n < x.length; n++) {
      var dx = p.x(x[n]) - px, dy = p.y(y[n]) - py;
      if (dx * dx + dy * dy < nearestSq) {
        nearestSq = dx * dx + dy * dy;
        best = n;
      }
    }
    return best;
  }

  // The node under pixel (px, py) of the plot (within HOVER_PX), or -1 (also off the plot area and
  // while the nodes are hidden).
  function nodeAt(gd, px, py) {
    var nodes = nodesOf(gd), s = gd._fullLayout && gd._fullLayout._size;
    if (!nodes || !s || !shown(gd._fullData[NODES]) || px < s.l || px > s.l + s.w || py < s.t || py > s.t + s.h) return -1;
    return nearest(nodes.x, nodes.y, projector(gd), px, py, HOVER_PX);
  }

  // The tooltip of node n beside it (hoverLines; n = -1: none). The hovered node is kept on the
  // element (gd.hoveredNode).
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
    var state = stepOver(id, nodes), p = projector(gd);
    var lines = state ? hoverLines(nodes.text[n], energies(state.frames, state.step)[n], state.frames.range[state.step][1])
      : hoverLines(nodes.text[n]);
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
  function release(ev) {
    var down = pressed;
    pressed = null;
    if (!down || ev.button !== 0 || ev.detail > 1) return;  // a double click resets the axes (plotly)
    if (Math.abs(ev.clientX - down.x) >= MINDRAG || Math.abs(ev.clientY - down.y) >= MINDRAG) return;  // a pan
    var at = mouseAt(down.gd, ev), n = nodeAt(down.gd, at[0], at[1]), nodes = nodesOf(down.gd);
    if (n < 0) return;
    hover(down.gd, down.id, n);
    window.dash_clientside.set_props(down.id, {clickData: {points: [{curveNumber: NODES, pointNumber: n, pointIndex: n,
                                                                     x: nodes.x[n], y: nodes.y[n], text: nodes.text[n]}]}});
  }

  // Follow the plot: a new figure, a zoom or pan (also while under way), a legend click, a resize;
  // and the mouse: hover and click.
  function bind(gd, id) {
    if (gd.graphLayers) return;
    gd.graphLayers = true;
    if (!bind.released) {
      bind.released = true;
      document.addEventListener("mouseup", release, true);
    }
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
    },
    // The selection on graph `id` (a node and its strongest edges, drawn at once).
    select: function (id, selection) {
      if (selection) selections[id] = selection; else delete selections[id];
      var gd = plotOf(id);
      if (gd && gd._fullLayout) drawStep(gd, id);
    },
    withLegend: withLegend,
    // the pure parts, for the unit tests
    arrowShape: arrowShape, hoverLines: hoverLines, labelOrder: labelOrder, labelSpots: labelSpots,
    nearest: nearest, number: number, placeLabels: placeLabels, labelCandidates: labelCandidates
  };
})();

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  graph_layers: {
    // A new figure on a graph with layers: bind them to its plot (the figure itself is plotly's).
    attach: function (_figure, id) {
      window.brillmGraph.attach(id);
      return window.dash_clientside.no_update;
    },
    // The slider's k, when the figure on screen has another one (else nothing to draw).
    another_k: function (k, drawn) {
      return drawn && drawn.k === k ? window.dash_clientside.no_update : k;
    },
    // A new selection: drawn now; the legend names it once the drawing is on screen (a new
    // figure for plotly takes longer than the drawing and would hold it back).
    select: function (selection, figure, id) {
      window.brillmGraph.select(id, selection);
      var next = window.brillmGraph.withLegend(figure, selection);
      if (!next) return window.dash_clientside.no_update;
      return new Promise(function (resolve) {
        window.requestAnimationFrame(function () { setTimeout(function () { resolve(next); }, 0); });
      });
    }
  }
});
