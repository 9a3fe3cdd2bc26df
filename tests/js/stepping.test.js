"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const {loadAssets} = require("./load_asset");

const {brillmStepping: stepping, dash_clientside: dash} = loadAssets("colors.js", "explorer.js", "stepping.js");
const plain = (value) => JSON.parse(JSON.stringify(value));  // the script's objects, as this realm's

test("a step is clamped into the trace, and no trace has only step 0", () => {
  assert.equal(stepping.clamp(3, 10), 3);
  assert.equal(stepping.clamp(-2, 10), 0);
  assert.equal(stepping.clamp(12, 10), 9);
  assert.equal(stepping.clamp(undefined, 10), 0);
  assert.equal(stepping.clamp(null, 10), 0);
  assert.equal(stepping.clamp(5, 0), 0);
});

test("previous and next stop at the ends", () => {
  assert.equal(stepping.move(4, 1, 10), 5);
  assert.equal(stepping.move(4, -1, 10), 3);
  assert.equal(stepping.move(0, -1, 10), 0);
  assert.equal(stepping.move(9, 1, 10), 9);
  assert.equal(stepping.move(undefined, 1, 10), 1);
});

test("a chip shows the step that arrived at it", () => {
  assert.deepEqual([0, 1, 2, 7].map(stepping.chipStep), [0, 0, 1, 6]);
});

// the buttons' and the play timer's callback while no trace is on screen takes the same arithmetic
function clientStep(prop, value, max) {
  dash.callback_context = {triggered: [{prop_id: prop, value: 1}]};
  return dash.explorer.step(1, 1, 1, value, max);
}

test("the slider's own step callback moves within 0..max and sends nothing when it stays", () => {
  assert.equal(clientStep("sp-next.n_clicks", 2, 5), 3);
  assert.equal(clientStep("sp-prev.n_clicks", 2, 5), 1);
  assert.equal(clientStep("sp-interval.n_intervals", 5, 5), dash.no_update);
  assert.equal(clientStep("sp-prev.n_clicks", 0, 5), dash.no_update);
});

test("chip classes mark the current edge's source and target on each path", () => {
  const store = {chips: ["chip prompt", "chip prompt", "chip generated", "chip rerouted"]};
  assert.deepEqual(plain(stepping.chipClasses(store, 1)),
                   ["chip prompt", "chip prompt source", "chip generated target", "chip rerouted"]);
  const two = {chips: ["a", "b", "c", "d", "e"], chip_starts: [0, 3]};  // two paths: chips 0-2 and 3-4
  assert.deepEqual(plain(stepping.chipClasses(two, 0)), ["a source", "b target", "c", "d source", "e target"]);
  assert.deepEqual(plain(stepping.chipClasses({}, 0)), []);
});

test("a frame replaces whole trace properties and top-level layout keys, and keeps the rest", () => {
  const base = {data: [{type: "bar", x: [1], marker: {color: "red"}}, {type: "scatter", y: [2]}],
                layout: {height: 320, title: {text: "base"}, yaxis: {title: "e"}}};
  const frame = {data: [{x: [5, 6]}], layout: {title: {text: "step 3"}}};
  const drawn = plain(stepping.applyFrame(base, frame));
  assert.deepEqual(drawn.data, [{type: "bar", x: [5, 6], marker: {color: "red"}}, {type: "scatter", y: [2]}]);
  assert.deepEqual(drawn.layout, {height: 320, title: {text: "step 3"}, yaxis: {title: "e"}});
  assert.deepEqual(base.layout.title, {text: "base"});  // the base is left as it was
  assert.deepEqual(plain(stepping.applyFrame(base, {}).layout), base.layout);
});

function close(actual, expected) {
  assert.equal(actual.length, expected.length);
  actual.forEach((x, j) => assert.ok(Math.abs(x - expected[j]) < 1e-9, `${actual} != ${expected}`));
}

test("ribbon segments are as wide as their weights when none is too thin", () => {
  close(stepping.segmentWidths([0.25, 0.75], 1), [25, 75]);
  close(stepping.segmentWidths([1], 1), [100]);
  assert.deepEqual(plain(stepping.segmentWidths([], 1)), []);
});

test("a recency profile's thin segments are widened, and the others keep their proportions", () => {
  const weights = [];
  for (let j = 15; j >= 1; j--) weights.push(2 ** -j);  // 2^-15 .. 0.5, the last output heaviest
  weights[0] *= 2;  // they sum to 1
  const widths = stepping.segmentWidths(weights, 1);
  assert.ok(Math.abs(widths.reduce((a, b) => a + b, 0) - 100) < 1e-9);
  assert.ok(widths.every((x) => x >= 1 - 1e-12));
  const wide = widths.map((x, j) => [x, weights[j]]).filter(([x]) => x > 1);
  assert.ok(wide.length >= 5);
  const ratio = wide[0][0] / wide[0][1];
  wide.forEach(([x, w]) => assert.ok(Math.abs(x / w - ratio) < 1e-9 * ratio));  // one scale for all of them
  assert.ok(widths[14] > 45 && widths[14] < 50);  // the previous output's half, less its share of the room given
});

test("when even the least width does not fit every segment, all are equal", () => {
  close(stepping.segmentWidths([0.97, 0.01, 0.01, 0.01], 30), [25, 25, 25, 25]);
  close(stepping.segmentWidths([0, 0], 1), [50, 50]);
});

test("the ribbon's scale marks where the drawn segments reach each share", () => {
  close([0, 0.5, 1].map((s) => stepping.sharePosition([0.25, 0.75], [25, 75], s)), [0, 50, 100]);
  // a thin first segment drawn at 10 %: the middle of the weights is inside the wide one, past its widening
  const weights = [0.02, 0.98], widths = stepping.segmentWidths(weights, 10);
  close(widths, [10, 90]);
  close([stepping.sharePosition(weights, widths, 0.5)], [10 + 90 * 0.48 / 0.98]);
  close([stepping.sharePosition([0.5, 0.5], [50, 50], 0.5)], [50]);
  assert.equal(stepping.sharePosition([], [], 0.5), 100);
  assert.equal(stepping.sharePosition([0, 0, 1], [1, 1, 98], 0), 0);  // forgotten outputs weigh 0: 0 is the end
  close([stepping.sharePosition([0, 0, 1], [1, 1, 98], 0.5)], [51]);
});
