"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const {loadAssets} = require("./load_asset");

const {brillmGraph} = loadAssets("colors.js", "graph_layers.js");
const plain = (value) => JSON.parse(JSON.stringify(value));  // out of the script's realm, for deepEqual
const identity = {x: (v) => v, y: (v) => v};

function overlap(a, b) {
  return a.l < b.r && b.l < a.r && a.t < b.b && b.t < a.b;
}

// A label candidate at pixel (x, y) of w x h, 8 px off its node.
function candidate(node, x, y, must = false, w = 40, h = 15) {
  return {node, x, y, w, h, off: 8, must};
}

test("the hit test finds the nearest node within the radius", () => {
  const x = [0, 10, 30], y = [0, 0, 0];
  assert.equal(brillmGraph.nearest(x, y, identity, 4, 0, 20), 0);
  assert.equal(brillmGraph.nearest(x, y, identity, 6, 0, 20), 1);
  assert.equal(brillmGraph.nearest(x, y, identity, 100, 0, 20), -1);  // none close enough
  assert.equal(brillmGraph.nearest(x, y, identity, 52, 0, 20), -1);  // 22 px from the last: outside
  const scaled = {x: (v) => 3 * v, y: (v) => 3 * v};  // zoomed in: the radius is in pixels, not layout units
  assert.equal(brillmGraph.nearest(x, y, scaled, 60, 0, 20), -1);
  assert.equal(brillmGraph.nearest(x, y, scaled, 84, 0, 20), 2);
});

test("labels go above their node while there is room, never over another label", () => {
  const box = {l: 0, t: 0, r: 800, b: 600};
  const placed = brillmGraph.placeLabels([candidate(1, 100, 100), candidate(2, 400, 300)], box, 10, []);
  assert.deepEqual(plain(placed), [{node: 1, box: {l: 80, t: 77, r: 120, b: 92}}, {node: 2, box: {l: 380, t: 277, r: 420, b: 292}}]);
  // a node just below another: its label goes to the next free side, below it
  const crowded = brillmGraph.placeLabels([candidate(1, 100, 100), candidate(2, 100, 112)], box, 10, []);
  assert.equal(crowded[1].box.t, 120);
  for (const a of crowded) for (const b of crowded) if (a !== b) assert.ok(!overlap(a.box, b.box));
});

test("a label that fits nowhere is left out, unless its node is on the path", () => {
  const box = {l: 0, t: 0, r: 800, b: 600};
  const ring = {l: 0, t: 0, r: 800, b: 600};  // an obstacle covering everything
  const placed = brillmGraph.placeLabels([candidate(1, 100, 100, true), candidate(2, 300, 300)], box, 10, [ring]);
  assert.deepEqual(plain(placed).map((p) => p.node), [1]);
  assert.deepEqual(plain(placed[0].box), {l: 80, t: 77, r: 120, b: 92});  // above its node all the same
});

test("at most the budget of labels off the path, however many fit", () => {
  const box = {l: 0, t: 0, r: 2000, b: 2000}, many = [];
  for (let i = 0; i < 50; i++) many.push(candidate(i, 50 + (i % 10) * 150, 50 + Math.floor(i / 10) * 150, i < 3));
  const placed = brillmGraph.placeLabels(many, box, 20, []);
  assert.equal(placed.length, 23);  // the three path nodes and 20 more
  assert.deepEqual(plain(placed).slice(0, 3).map((p) => p.node), [0, 1, 2]);
});

test("a label's text is measured only when placing reaches it", () => {
  // 4,000 nodes far apart: measuring every label in view took most of a first draw
  let measured = 0;
  const ctx = {font: "", measureText(text) { measured++; return {width: 7 * text.length}; }};
  const n = 4000, x = new Float32Array(n), y = new Float32Array(n), text = [];
  for (let i = 0; i < n; i++) { x[i] = (i % 60) * 200; y[i] = Math.floor(i / 60) * 200; text.push("token " + i); }
  const nodes = {x, y, text, r: 2};
  const order = Array.from({length: n}, (_, i) => i);
  const candidates = brillmGraph.labelCandidates(ctx, order, nodes, identity, {0: true});
  assert.equal(measured, 0);
  const placed = brillmGraph.placeLabels(candidates, {l: -50, t: -50, r: 1e6, b: 1e6}, 40, []);
  assert.equal(placed.length, 41);  // the path node and the budget
  assert.equal(measured, 41);
  assert.ok(placed[0].box.r - placed[0].box.l > 7 * "token 0".length);  // the measured width, padded
});

test("zooming in makes room: more of the nodes in view get a label", () => {
  // 400 nodes on a 20 x 20 grid 12 px apart; zoomed in 4x around its centre, the nodes left in view
  // (the middle 5 x 5) are 48 px apart
  const box = {l: 0, t: 0, r: 240, b: 240}, whole = [], zoomed = [];
  for (let i = 0; i < 400; i++) {
    const x = 6 + (i % 20) * 12, y = 6 + Math.floor(i / 20) * 12;
    whole.push(candidate(i, x, y));
    const zx = (x - 120) * 4 + 120, zy = (y - 120) * 4 + 120;
    if (zx >= 0 && zx <= 240 && zy >= 0 && zy <= 240) zoomed.push(candidate(i, zx, zy));
  }
  const middle = new Set(zoomed.map((c) => c.node));
  const before = brillmGraph.placeLabels(whole, box, 40, []).filter((p) => middle.has(p.node)).length;
  const after = brillmGraph.placeLabels(zoomed, box, 40, []).length;
  assert.ok(after > before, `${after} labels in the zoomed view, ${before} there before`);
});

test("the label order: the path, the step's ranking, the figure's ranking, each node once and in view", () => {
  const inView = (n) => n !== 7;
  const order = brillmGraph.labelOrder([4, 2], [2, 9, 7, 5], Int32Array.from([5, 1, 4, 3, 7, 0]), inView);
  assert.deepEqual(plain(order), [4, 2, 9, 5, 1, 3, 0]);
});

test("every arrow of the path can be seen: bent, and a loop for a self-loop", () => {
  const length = (s) => Math.hypot(s.end[0] - s.start[0], s.end[1] - s.start[1]);
  const far = brillmGraph.arrowShape(0, 0, 100, 0, 5, 6);
  assert.ok(Math.abs(far.head[0] - 1) < 0.1 && Math.abs(Math.hypot(...far.head) - 1) < 1e-9);  // points at the target
  assert.ok(far.end[0] < 100 && far.start[0] > 0 && far.control[1] !== 0);
  // a -> b and b -> a bend to opposite sides: both visible
  const back = brillmGraph.arrowShape(100, 0, 0, 0, 5, 6);
  assert.ok(Math.sign(far.control[1]) === -Math.sign(back.control[1]));
  // nodes drawn almost on one spot: the arrow still spans a visible curve
  const close = brillmGraph.arrowShape(0, 0, 3, 0, 5, 6);
  assert.ok(Math.hypot(close.control[0] - 1.5, close.control[1]) >= 12);
  assert.ok(Math.hypot(close.middle[0] - 1.5, close.middle[1]) >= 6);
  const loop = brillmGraph.arrowShape(50, 50, 50, 50, 5, 6);  // a node to itself
  assert.ok(length(loop) > 5 && loop.control[1] < 50 - 20 && loop.middle[1] < 50 - 10);
});

test("the hover gives the exact float32 energy and its difference to the step's best, as the bars do", () => {
  const best = Math.fround(50009.7109375), energy = Math.fround(50005.12109375);
  assert.deepEqual(plain(brillmGraph.hoverLines("God #393", energy, best)),
                   ["God #393", "energy at this step: 50005.1211", "−4.5898 from the step's best"]);
  assert.equal(Math.fround(Number("50005.1211")), energy);  // reads back as the same float32
  assert.equal(brillmGraph.hoverLines("a", best, best)[2], "the step's best");
  assert.equal(brillmGraph.hoverLines("a", Math.fround(7.5), Math.fround(9.25))[2], "−1.75 from the step's best");
  assert.deepEqual(plain(brillmGraph.hoverLines("a", NaN, best)), ["a", "energy at this step: – (not a candidate)"]);
  assert.deepEqual(plain(brillmGraph.hoverLines("a")), ["a"]);  // no step drawn
});

test("colour bar ticks keep the digits that tell energies near 5e4 apart", () => {
  assert.equal(brillmGraph.number(50009.7109375, 8.85), "50009.71");
  assert.equal(brillmGraph.number(15.720096588134766, 9.8), "15.72");
});

test("a selection's legend names go into the figure of its picture, once", () => {
  const figure = {data: [{}, {meta: {picture: "p1"}}, {}, {name: "a", x: []}, {name: "b", x: []}, {name: "c", x: []}], layout: {}};
  const chosen = {picture: "p1", node: 4, names: ["out of 4", "in of 4", "selected node"]};
  const next = brillmGraph.withLegend(figure, chosen);
  assert.deepEqual(plain(next.data.slice(3).map((t) => [t.name, t.x])),
                   [["out of 4", [null]], ["in of 4", [null]], ["selected node", [null]]]);
  assert.equal(figure.data[3].name, "a");  // the figure given is left as it was
  assert.equal(brillmGraph.withLegend(next, chosen), null);  // nothing to change
  assert.equal(brillmGraph.withLegend(figure, {...chosen, picture: "p2"}), null);  // another picture's
  const cleared = brillmGraph.withLegend(next, {picture: "p1", node: -1, names: ["o", "i", "s"]});
  assert.deepEqual(plain(cleared.data[3].x), []);  // no node: no point, no legend entry
});
