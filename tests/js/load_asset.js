// Loads one of the app's browser scripts (assets/*.js) into a fresh context with a bare
// `window`, so that the pure functions it publishes on `window` can be tested under node.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const ASSETS = path.join(__dirname, "..", "..", "assets");

// Runs the named assets (in order, as the page would) and returns their shared `window`. The page's
// `document` is a stub that takes event listeners and finds no element.
function loadAssets(...names) {
  const window = {dash_clientside: {no_update: {}}};
  const document = {addEventListener() {}, getElementById: () => null, querySelector: () => null,
                    querySelectorAll: () => []};
  const context = vm.createContext({window, document, console, Math, JSON, Number, String, Array, Object});
  for (const name of names) {
    vm.runInContext(fs.readFileSync(path.join(ASSETS, name), "utf8"), context, {filename: name});
  }
  return window;
}

module.exports = {loadAssets};
