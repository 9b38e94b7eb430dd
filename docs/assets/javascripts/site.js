// Page script of the site: typeset maths and draw figures on every page, including
// pages reached by Material's instant navigation (document$ emits for each of them),
// and restyle figures when the reader switches between the light and dark palettes.
(function () {
  "use strict";

  const here = new URL(".", document.currentScript.src);
  const PLOTLY_SRC = new URL("../vendor/plotly/plotly-cartesian.min.js", here).href;

  // State the browser tests read: the path whose maths and figures are done.
  const site = (window.dpoSite = { readyPath: null, ready: Promise.resolve(), errors: [] });

  // Pausing an animation interrupts Plotly.animate, which rejects its promise with no
  // reason and nobody to catch it (Plotly's own menu buttons call it). That rejection
  // is expected, not an error: keep it out of the console.
  window.addEventListener("unhandledrejection", function (event) {
    if (event.reason === undefined) event.preventDefault();
  });

  // plotly.js is fetched once, the first time a page with a figure is shown.
  let plotlyLoading = null;
  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotlyLoading) {
      plotlyLoading = new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = PLOTLY_SRC;
        script.onload = function () { resolve(window.Plotly); };
        script.onerror = function () { reject(new Error("could not load " + PLOTLY_SRC)); };
        document.head.appendChild(script);
      });
    }
    return plotlyLoading;
  }

  function scheme() {
    return document.body.getAttribute("data-md-color-scheme") || "default";
  }

  function applyPalette(div) {
    const updates = div._dpoSpec && div._dpoSpec.palettes[scheme()];
    if (!updates || div._dpoScheme === scheme()) return Promise.resolve();
    div._dpoScheme = scheme();
    return window.Plotly.relayout(div, updates);
  }

  function drawFigures(root) {
    const plots = Array.from(root.querySelectorAll(".dpo-figure__plot"));
    if (!plots.length) return Promise.resolve();
    return loadPlotly().then(function (Plotly) {
      return Promise.all(plots.map(function (div) {
        const spec = (window.dpoFigures || {})[div.dataset.figure];
        if (!spec) throw new Error("no data for figure " + div.dataset.figure);
        const fig = spec.figure;
        div._dpoSpec = spec;
        div._dpoScheme = "default"; // the figure JSON is written for the light palette
        return Plotly.newPlot(div, { data: fig.data, layout: fig.layout, frames: fig.frames || [], config: spec.config })
          .then(function () { return applyPalette(div); });
      }));
    });
  }

  // MathJax must not typeset twice at once: chain every call.
  let mathQueue = Promise.resolve();
  function typeset(root) {
    if (!window.MathJax || !window.MathJax.startup) return Promise.resolve();
    mathQueue = mathQueue.then(function () { return window.MathJax.startup.promise; }).then(function () {
      const nodes = Array.from(root.querySelectorAll(".arithmatex, .jp-MarkdownOutput"));
      window.MathJax.typesetClear();
      window.MathJax.texReset();
      return nodes.length ? window.MathJax.typesetPromise(nodes) : null;
    });
    return mathQueue;
  }

  document$.subscribe(function () {
    const path = location.pathname;
    site.readyPath = null;
    site.ready = Promise.all([typeset(document), drawFigures(document)])
      .then(function () { if (location.pathname === path) site.readyPath = path; })
      .catch(function (error) { site.errors.push(String(error)); console.error(error); });
  });

  // Light/dark toggle: Material sets data-md-color-scheme on <body>.
  new MutationObserver(function () {
    if (!window.Plotly) return;
    document.querySelectorAll(".dpo-figure__plot.js-plotly-plot").forEach(applyPalette);
  }).observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });

  // A figure drawn inside a hidden content tab has no width yet: fit it when shown.
  document.addEventListener("change", function (event) {
    const set = event.target.closest && event.target.closest(".tabbed-set");
    if (!set || !window.Plotly) return;
    requestAnimationFrame(function () {
      set.querySelectorAll(".dpo-figure__plot.js-plotly-plot").forEach(function (div) {
        if (div.offsetParent !== null) window.Plotly.Plots.resize(div);
      });
    });
  });
})();
