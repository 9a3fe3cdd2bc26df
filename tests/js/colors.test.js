"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const {loadAssets} = require("./load_asset");

const {brillmColor} = loadAssets("colors.js");

test("the scale's ends are its first and last stops", () => {
  assert.equal(brillmColor.scale(["#000000", "#ff8040"], 0), "rgb(0,0,0)");
  assert.equal(brillmColor.scale(["#000000", "#ff8040"], 1), "rgb(255,128,64)");
});

test("a point between two stops mixes them linearly", () => {
  assert.equal(brillmColor.scale(["#000000", "#808080", "#ffffff"], 0.25), "rgb(64,64,64)");
});

test("values outside 0..1 are clamped to the ends", () => {
  assert.equal(brillmColor.scale(["#102030", "#ffffff"], -3), "rgb(16,32,48)");
  assert.equal(brillmColor.scale(["#102030", "#ffffff"], 7), "rgb(255,255,255)");
});
