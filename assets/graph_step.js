// Token graph: stepping in the browser. The server sends every step's landscape, path,
// arrows and labels once (explorer/figures/graph.py, step_frames); these callbacks apply
// step i to the figure, the label and the link without a server request.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  graph_step: {
    // Apply the slider's step: node colours and hover energies, path, arrows, labels, title,
    // the step in the page state and in the link.
    draw: function (step, frames, _drawn, figure, state) {
      var none = window.dash_clientside.no_update;
      if (!frames || !figure || !state) return [none, none, none];
      var s = Math.max(0, Math.min(step || 0, frames.steps - 1));
      var V = frames.vocab, T = frames.traces;
      if (!frames._energies) {  // decoded once per trace: base64 float32, steps x vocab
        var bytes = Uint8Array.from(atob(frames.energies), function (c) { return c.charCodeAt(0); });
        frames._energies = new Float32Array(bytes.buffer);
      }
      var row = frames._energies.subarray(s * V, (s + 1) * V);
      var lo = frames.range[s][0], hi = frames.range[s][1];
      var colour = new Float32Array(V);
      for (var i = 0; i < V; i++) colour[i] = isNaN(row[i]) ? lo : row[i];
      var data = figure.data.slice();
      var nodes = data[T.nodes];
      data[T.nodes] = Object.assign({}, nodes, {customdata: row, hovertemplate: frames.hover,
        marker: Object.assign({}, nodes.marker, {color: colour, cmin: lo, cmax: hi, showscale: true})});
      data[T.path] = Object.assign({}, data[T.path],
        {x: frames.path_x.slice(0, s + 2), y: frames.path_y.slice(0, s + 2)});
      var layout = Object.assign({}, figure.layout,
        {annotations: frames.arrows.slice(0, 2 * (s + 1)).concat(frames.labels[s].notes)});
      var hash = window.location.hash.replace(/^#/, "").split("&").filter(function (part) {
        return part && part.split("=")[0] !== "s";
      });
      if (s > 0) hash.push("s=" + s);
      window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search +
        (hash.length ? "#" + hash.join("&") : ""));
      return [{data: data, layout: layout}, frames.titles[s], Object.assign({}, state, {step: s})];
    },
    // Previous / next / play-pause / play ticks -> the slider's step; play stops at the last step
    // and, started there, begins again at the first.
    move: function (_prev, _next, _tick, _play, step, max, stopped) {
      var none = window.dash_clientside.no_update;
      var id = ((window.dash_clientside.callback_context.triggered || [])[0] || {}).prop_id || "";
      var last = max || 0, s = step || 0, playing = !stopped;
      if (/-play\./.test(id)) {
        playing = !playing;
        if (playing && s >= last) s = 0;
      } else {
        s += /-prev\./.test(id) ? -1 : 1;
      }
      s = Math.max(0, Math.min(s, last));
      if (s >= last) playing = false;
      return [s === step ? none : s, !playing, playing ? "❚❚ pause" : "▶ play"];
    }
  }
});
