// The playground widgets (dpo_ref/figures/playground.py writes their HTML): controls that
// build a configuration, a Web Worker that trains it (playground-worker.js over
// playground-core.js), and Plotly charts redrawn one per animation frame so the main
// thread never holds a long task while training. site.js loads this file, after
// plotly.js, when a widget comes near the screen, and calls dpoPlayground.start(root).
(function () {
  "use strict";

  const here = new URL(".", document.currentScript.src);
  const WORKER_SRC = new URL("playground-worker.js", here).href;
  const MAX_POINTS = 400; // history kept per series; older points are thinned, never the latest
  // Static charts: no hover or drag layers, which cost about a third of each redraw, and one config
  // throughout, so no redraw while training rebuilds a chart from scratch. The status line gives the numbers.
  const PLOT_CONFIG = { displayModeBar: false, responsive: true, staticPlot: true };
  const registry = (window.dpoPlayground = { widgets: {}, start: start });

  function start(root) {
    if (!root._dpoWidget) root._dpoWidget = new Widget(root);
    return root._dpoWidget;
  }

  function parseValue(field, text, defaults) {
    if (field === "data") return text === "exact" ? "exact" : Number(text);
    if (typeof defaults[field] === "number") return Number(text);
    return text;
  }

  // ------------------------------------------------------------------ the page's address

  function fromAddress(defaults) {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const values = {};
    params.forEach(function (text, field) {
      if (field === "preset") return;
      values[field] = field in defaults ? parseValue(field, text, defaults) : text;
    });
    return values;
  }

  function toAddress(config, defaults) {
    const params = new URLSearchParams();
    Object.keys(defaults).forEach(function (field) {
      if (field !== "preset" && config[field] !== defaults[field]) params.set(field, String(config[field]));
    });
    const text = params.toString();
    history.replaceState(null, "", text ? "#" + text : location.pathname + location.search);
  }

  // ------------------------------------------------------------------ one widget

  function Widget(root) {
    const spec = JSON.parse(root.dataset.playground);
    const self = this;
    this.root = root;
    this.spec = spec;
    this.status = root.querySelector(".dpo-playground__status");
    this.claim = root.querySelector(".dpo-playground__claim");
    this.playButton = root.querySelector('[data-action="play"]');
    this.speed = root.querySelector("[data-speed]");
    this.charts = {};
    root.querySelectorAll("[data-chart]").forEach(function (div) { self.charts[div.dataset.chart] = div; });
    this.playing = false;
    this.pending = false;
    this.dirty = {};
    this.drawTimes = [];
    this.worker = new Worker(WORKER_SRC);
    this.worker.onmessage = function (event) { self.receive(event.data); };
    this.worker.onerror = function (event) { self.say("The trainer failed: " + (event.message || "unknown error")); };
    registry.widgets[spec.id] = this;

    let config = Object.assign({}, spec.start);
    if (spec.address && location.hash.length > 1) {
      try {
        config = window.DPOPlayground.makeConfig(Object.assign({}, spec.defaults, fromAddress(spec.defaults)), spec.defaults);
      } catch (error) {
        this.addressError = "The address's settings were not used: " + error.message + ".";
      }
    }
    this.showClaim(spec.claim || "");
    root.querySelectorAll("[data-field]").forEach(function (control) {
      control.addEventListener("change", function () { self.change(control); });
    });
    root.querySelectorAll("[data-preset]").forEach(function (button) {
      button.addEventListener("click", function () { self.usePreset(button.dataset.preset); });
    });
    this.playButton.addEventListener("click", function () { self.togglePlay(); });
    root.querySelector('[data-action="step"]').addEventListener("click", function () { self.stepOnce(); });
    root.querySelector('[data-action="reset"]').addEventListener("click", function () { self.reset(self.config); });
    new MutationObserver(function () { self.markAll(); })
      .observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });
    this.reset(config, root.dataset.autoplay === "1"); // Train was pressed before the widget started
    delete root.dataset.autoplay;
  }

  Widget.prototype.say = function (text) { this.status.textContent = text; };

  Widget.prototype.showClaim = function (text, section) {
    this.claim.textContent = text;
    if (section) {
      const link = document.createElement("a");
      link.href = new URL("../" + section.replace(/\.md$/, "/"), location.href).pathname;
      link.textContent = "Read the section";
      this.claim.append(" ", link);
    }
  };

  Widget.prototype.syncControls = function () {
    const config = this.config;
    this.root.querySelectorAll("[data-field]").forEach(function (control) {
      const value = config[control.dataset.field];
      if (control.tagName === "SELECT") {
        const text = JSON.stringify(value);
        if (!Array.from(control.options).some(function (o) { return o.value === text; })) {
          control.add(new Option(String(value), text)); // a value from a shared address
        }
        control.value = text;
      } else {
        control.value = String(value);
      }
    });
    // the second run's settings mean nothing without a second run
    this.root.querySelectorAll('[data-field="compare_beta"], [data-field="compare_lr"]').forEach(function (control) {
      control.disabled = !config.compare;
    });
  };

  Widget.prototype.change = function (control) {
    const field = control.dataset.field;
    const value = control.tagName === "SELECT" ? JSON.parse(control.value) : parseValue(field, control.value, this.spec.defaults);
    const next = Object.assign({}, this.config);
    next[field] = value;
    this.root.querySelectorAll("[data-preset]").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    this.reset(next);
  };

  Widget.prototype.usePreset = function (name) {
    const preset = this.spec.presets[name];
    this.root.querySelectorAll("[data-preset]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.preset === name));
    });
    this.showClaim(preset.claim, preset.section);
    this.reset(Object.assign({}, this.spec.defaults, preset.config, { preset: name }), true);
  };

  // A new trainer for `config`; `play` starts it at once (a preset does).
  Widget.prototype.reset = function (config, play) {
    try {
      config = window.DPOPlayground.makeConfig(config, this.spec.defaults);
    } catch (error) {
      this.syncControls();
      this.say("Not trained: " + error.message + ".");
      return;
    }
    this.config = config;
    this.syncControls();
    if (this.spec.address) toAddress(config, this.spec.defaults);
    this.pause();
    this.history = null;
    this.generation = (this.generation || 0) + 1;
    this.pending = true;
    this.startAfterReset = !!play;
    this.worker.postMessage({ cmd: "reset", config: config, id: this.generation });
  };

  // Every chart drawn and none waiting for a redraw (the browser tests wait for it).
  Widget.prototype.settled = function () {
    const self = this;
    return !!this.last && Object.keys(this.charts).every(function (k) { return !self.dirty[k] && self.charts[k].data; });
  };

  Widget.prototype.finished = function () {
    return this.last && this.last.step >= this.config.steps;
  };

  Widget.prototype.togglePlay = function () {
    if (this.playing) { this.pause(); return; }
    if (this.finished()) { this.reset(this.config, true); return; } // Play at the end starts again
    this.playing = true;
    this.playButton.textContent = "Pause";
    this.tick();
  };

  Widget.prototype.pause = function () {
    this.playing = false;
    this.playButton.textContent = this.finished() ? "Train again" : "Train";
  };

  Widget.prototype.stepOnce = function () {
    if (this.pending || this.finished()) return;
    this.pause();
    this.request();
  };

  Widget.prototype.request = function () {
    this.pending = true;
    this.worker.postMessage({ cmd: "run", steps: Number(this.speed.value), id: this.generation });
  };

  // One animation frame: ask for the next updates while playing, redraw one stale chart.
  Widget.prototype.tick = function () {
    const self = this;
    if (this.ticking) return;
    this.ticking = true;
    requestAnimationFrame(function () {
      self.ticking = false;
      if (self.playing && !self.pending) self.request();
      const stale = Object.keys(self.dirty).filter(function (k) { return self.dirty[k]; });
      if (stale.length) {
        stale.sort(function (a, b) { return self.dirty[a] - self.dirty[b]; });
        self.draw(stale[0]);
      }
      if (self.playing || stale.length > 1) self.tick();
    });
  };

  Widget.prototype.receive = function (message) {
    if (message.id !== this.generation) return; // an answer for a configuration since replaced
    this.pending = false;
    if (message.error) { this.pause(); this.say("Not trained: " + message.error + "."); return; }
    const snap = message.snapshot;
    if (snap.world) {
      this.world = snap.world;
      this.history = { step: [], runs: snap.runs.map(function () { return {}; }) };
      this.order = snap.world.rewards.map(function (r, i) { return i; })
        .sort(function (a, b) { return snap.world.rewards[a] - snap.world.rewards[b]; });
    }
    this.record(snap);
    this.last = snap;
    if (snap.world && this.startAfterReset) { this.startAfterReset = false; this.togglePlay(); }
    if (this.finished()) {
      if (this.playing) this.finishedAt = performance.now(); // the site benchmark watches the main thread until then
      this.pause();
    }
    this.report();
    this.markAll();
  };

  Widget.prototype.record = function (snap) {
    const h = this.history;
    h.step.push(snap.step);
    snap.runs.forEach(function (run, i) {
      const series = h.runs[i];
      const values = Object.assign({ loss: run.loss }, run.metrics);
      Object.keys(values).forEach(function (key) { (series[key] = series[key] || []).push(values[key]); });
    });
    if (h.step.length > MAX_POINTS) { // keep every other point, and the newest
      const keep = function (v, i, all) { return i % 2 === 0 || i === all.length - 1; };
      h.step = h.step.filter(keep);
      h.runs.forEach(function (series) { Object.keys(series).forEach(function (k) { series[k] = series[k].filter(keep); }); });
    }
  };

  Widget.prototype.look = function (index) {
    const method = index === 0 ? this.config.method : this.config.compare;
    const look = this.spec.looks[method];
    const same = index === 1 && this.config.compare === this.config.method;
    const beta = index === 0 ? this.config.beta : this.config.compare_beta;
    return { label: look.label + ", β " + beta, colour: same ? this.spec.secondColour : look.colour, dash: index === 1 ? "dot" : "solid" };
  };

  Widget.prototype.report = function () {
    const self = this, snap = this.last;
    const parts = ["Step " + snap.step + " of " + this.config.steps];
    snap.runs.forEach(function (run, i) {
      const name = self.look(i).label;
      if (run.diverged) parts.push(name + ": diverged, lower its step size");
      else if (run.loss !== null) parts.push(name + ": loss " + run.loss.toPrecision(4) + ", KL to π*β " + run.metrics.kl_optimum.toPrecision(3));
    });
    if (this.addressError) { parts.unshift(this.addressError); this.addressError = null; }
    this.say(parts.join(" · "));
  };

  // ------------------------------------------------------------------ charts

  Widget.prototype.markAll = function () {
    const self = this, now = performance.now();
    Object.keys(this.charts).forEach(function (k) { if (!self.dirty[k]) self.dirty[k] = now; });
    this.tick();
  };

  function colours() {
    const css = getComputedStyle(document.body);
    const fg = css.getPropertyValue("--md-default-fg-color").trim() || "#333";
    const light = css.getPropertyValue("--md-default-fg-color--lightest").trim() || "#ddd";
    const muted = css.getPropertyValue("--md-default-fg-color--light").trim() || "#777";
    return { fg: fg, grid: light, muted: muted };
  }

  function baseLayout(title, c, compact) {
    return {
      title: { text: title, font: { size: 13 }, x: 0, xanchor: "left", y: 0.98, yanchor: "top" },
      height: compact ? 250 : 280,
      margin: { l: 60, r: 14, t: 58, b: 46 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: c.fg, size: 12 },
      legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", font: { size: 11 }, bgcolor: "rgba(0,0,0,0)" },
      xaxis: { gridcolor: c.grid, zerolinecolor: c.muted },
      yaxis: { gridcolor: c.grid, zerolinecolor: c.muted },
      uirevision: "keep",
    };
  }

  Widget.prototype.draw = function (name) {
    const div = this.charts[name];
    this.dirty[name] = 0;
    if (!this.history || !div || div.offsetParent === null) return;
    const c = colours();
    const made = this["chart_" + name](c);
    made.layout = Object.assign(baseLayout(this.spec.titles[name], c, this.spec.charts.length < 6), made.layout);
    made.layout.xaxis = Object.assign(baseLayout("", c).xaxis, made.layout.xaxis);
    made.layout.yaxis = Object.assign(baseLayout("", c).yaxis, made.layout.yaxis);
    // the series grow in place: a new revision tells Plotly.react that they changed
    this.revision = (this.revision || 0) + 1;
    made.layout.datarevision = this.revision;
    const started = performance.now();
    window.Plotly.react(div, made.data, made.layout, PLOT_CONFIG);
    this.drawTimes.push([name, Math.round(performance.now() - started)]); // the site benchmark reports the slowest
  };

  Widget.prototype.lines = function (key, options) {
    const self = this;
    return this.history.runs.map(function (series, i) {
      const look = self.look(i);
      return Object.assign({
        type: "scatter", mode: "lines", x: self.history.step, y: series[key], name: look.label,
        line: { color: look.colour, width: 2.5, dash: look.dash },
      }, options || {});
    });
  };

  Widget.prototype.chart_loss = function () {
    return { data: this.lines("loss"), layout: { xaxis: { title: { text: "update" } }, yaxis: { title: { text: "loss" } } } };
  };

  Widget.prototype.chart_distance = function () {
    return {
      data: this.lines("kl_optimum"),
      layout: { xaxis: { title: { text: "update" } }, yaxis: { title: { text: "nats" }, type: "log", exponentformat: "power" } },
    };
  };

  // Chosen, rejected and margin for each run; the second run dotted, named once in the legend.
  Widget.prototype.chart_rewards = function (c) {
    const h = this.history, self = this, data = [];
    const parts = [["chosen_reward", "chosen", "#009E73", 2.5], ["rejected_reward", "rejected", "#D55E00", 2.5], ["margin", "margin", c.fg, 1.5]];
    h.runs.forEach(function (series, i) {
      const look = self.look(i);
      parts.forEach(function (part) {
        data.push({ type: "scatter", mode: "lines", x: h.step, y: series[part[0]], name: part[1], showlegend: i === 0,
          legendgroup: part[1],
          line: { color: part[2], width: part[3], dash: look.dash } });
      });
    });
    return { data: data, layout: { xaxis: { title: { text: "update" } }, yaxis: { title: { text: "β log π/π_ref" } } } };
  };

  Widget.prototype.chart_mass = function () {
    const h = this.history, s = h.runs[0];
    const line = function (key, name, colour) {
      return { type: "scatter", mode: "lines", x: h.step, y: s[key], name: name, line: { color: colour, width: 2.5 } };
    };
    return {
      data: [line("mass_only_chosen", "answers only ever chosen", "#009E73"), line("mass_both", "chosen and rejected", "#0072B2"),
        line("mass_only_rejected", "only ever rejected", "#D55E00")],
      layout: { xaxis: { title: { text: "update" } }, yaxis: { title: { text: "probability" }, rangemode: "tozero" } },
    };
  };

  Widget.prototype.chart_plane = function (c) {
    const self = this, w = this.world;
    const data = [{
      type: "scatter", mode: "lines", x: w.frontier.map(function (p) { return p[0]; }), y: w.frontier.map(function (p) { return p[1]; }),
      name: "exact optimal frontier", line: { color: c.muted, width: 2 },
    }];
    this.history.runs.forEach(function (series, i) {
      const look = self.look(i);
      data.push({ type: "scatter", mode: "lines", x: series.kl_ref, y: series.reward, name: look.label, line: { color: look.colour, width: 2.5, dash: look.dash } });
      data.push({ type: "scatter", mode: "markers", x: [series.kl_ref[series.kl_ref.length - 1]], y: [series.reward[series.reward.length - 1]],
        showlegend: false, marker: { color: look.colour, size: 10 } });
    });
    const most = Math.max.apply(null, this.history.runs.map(function (s) { return Math.max.apply(null, s.kl_ref); }));
    return {
      data: data,
      layout: { xaxis: { title: { text: "KL(π ‖ π_ref), nats" }, range: [0, Math.max(0.05, most * 1.15)] }, yaxis: { title: { text: "expected true reward" } } },
    };
  };

  Widget.prototype.chart_probs = function (c) {
    const self = this, w = this.world, order = this.order;
    const x = order.map(function (i, k) { return k + 1; });
    const pick = function (values) { return order.map(function (i) { return values[i]; }); };
    const data = [{ type: "bar", x: x, y: pick(w.reference), name: "π_ref", marker: { color: c.muted } }];
    this.last.runs.forEach(function (run, i) {
      const look = self.look(i);
      data.push({ type: "bar", x: x, y: pick(run.probs), name: look.label, marker: { color: look.colour } });
    });
    data.push({ type: "scatter", mode: "markers", x: x, y: pick(w.optimum[0]), name: "π*β (β " + this.config.beta + ")",
      marker: { symbol: "line-ew-open", size: 14, color: c.fg, line: { width: 2.5, color: c.fg } } });
    return { data: data, layout: { barmode: "group", bargap: 0.15, xaxis: { title: { text: "answers, lowest true reward first" }, dtick: Math.max(1, Math.round(x.length / 8)) }, yaxis: { title: { text: "probability" }, rangemode: "tozero" } } };
  };
})();
