// Page script of the site: draw figures and typeset what maths is still TeX on every
// page, including pages reached by Material's instant navigation (document$ emits for
// each of them), and restyle figures when the reader switches between the light and
// dark palettes. The site's formulas arrive typeset (dpo_ref/prerendered_math.py);
// MathJax is fetched only for a page with a formula that does not.
(function () {
  "use strict";

  const here = new URL(".", document.currentScript.src);
  const PLOTLY_SRC = new URL("../vendor/plotly/plotly-basic.min.js", here).href;
  const MATHJAX_SRC = new URL("../vendor/mathjax/tex-svg.js", here).href;

  // State the browser tests read: the path whose maths and figures are done.
  // firstScreen and drawn: {path, ms}, ms since navigation, once the maths and figures
  // first in view, and then all of them, are drawn; ms counts from the first page load
  // (benchmarks/site.py reads them).
  const site = (window.dpoSite = { readyPath: null, firstScreen: null, drawn: null, ready: Promise.resolve(), errors: [] });

  // Pausing an animation interrupts Plotly.animate, which rejects its promise with no
  // reason and nobody to catch it (Plotly's own menu buttons call it). That rejection
  // is expected, not an error: keep it out of the console.
  window.addEventListener("unhandledrejection", function (event) {
    if (event.reason === undefined) event.preventDefault();
  });

  // Each library is fetched once, the first time a page needs it.
  const loading = {};
  function loadScript(src) {
    if (!loading[src]) {
      loading[src] = new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = src;
        script.onload = function () { resolve(); };
        script.onerror = function () { reject(new Error("could not load " + src)); };
        document.head.appendChild(script);
      });
    }
    return loading[src];
  }
  function loadPlotly() {
    return loadScript(PLOTLY_SRC);
  }
  // mathjax-config.js set window.MathJax to the settings; the script replaces them.
  function loadMathJax() {
    return loadScript(MATHJAX_SRC).then(function () { return window.MathJax.startup.promise; });
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

  function drawFigure(div) {
    const spec = (window.dpoFigures || {})[div.dataset.figure];
    if (!spec) return Promise.reject(new Error("no data for figure " + div.dataset.figure));
    const fig = spec.figure;
    div._dpoSpec = spec;
    div._dpoScheme = "default"; // the figure JSON is written for the light palette
    return window.Plotly.newPlot(div, { data: fig.data, layout: fig.layout, frames: fig.frames || [], config: spec.config })
      .then(function () { return applyPalette(div); });
  }

  // MathJax must not typeset twice at once: chain every call. `fresh` starts a new page:
  // forget the previous page's maths and equation labels (if MathJax came at all).
  let mathQueue = Promise.resolve();
  function typeset(nodes, fresh) {
    if (!nodes.length && !(fresh && window.MathJax && window.MathJax.typesetClear)) return mathQueue;
    mathQueue = mathQueue.then(nodes.length ? loadMathJax : null).then(function () {
      if (fresh) {
        window.MathJax.typesetClear();
        window.MathJax.texReset();
      }
      return nodes.length ? window.MathJax.typesetPromise(nodes) : null;
    });
    return mathQueue;
  }

  // Formulas that are still TeX: arithmatex's containers not typeset at build time, and
  // the Markdown cells of example notebooks (Jupyter's $ and $$) that hold maths.
  function untypeset() {
    const math = Array.from(document.querySelectorAll(".arithmatex"))
      .filter(function (node) { return !node.querySelector("mjx-container"); });
    const cells = Array.from(document.querySelectorAll(".jp-MarkdownOutput"))
      .filter(function (node) { return /\$|\\\(|\\\[/.test(node.textContent); });
    return math.concat(cells);
  }

  function inView(element) {
    const box = element.getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight && box.width > 0;
  }

  // The next moment the browser has nothing more urgent to do (input, painting).
  function idle() {
    return new Promise(function (resolve) {
      if (window.requestIdleCallback) window.requestIdleCallback(resolve, { timeout: 100 });
      else setTimeout(resolve, 0);
    });
  }

  // A page is drawn in two passes. First the maths and figures on the reader's first
  // screen, together; then everything else in page order, one figure or a few formulas
  // per idle moment, so a figure far down the page never holds back the first screen and
  // scrolling stays responsive. Whatever the reader scrolls to is drawn next.
  // Each figure costs tens of milliseconds of Plotly layout, so drawing a page of nine
  // figures before showing anything took two seconds.
  const FORMULAS_PER_STEP = 12;
  let pageCount = 0;

  function drawPage(path) {
    const page = ++pageCount;
    const current = function () { return page === pageCount && location.pathname === path; };
    const math = untypeset();
    const plots = Array.from(document.querySelectorAll(".dpo-figure__plot"));
    const plotly = plots.length ? loadPlotly() : Promise.resolve();
    const pending = math.map(function (node) { return { node: node, math: true }; })
      .concat(plots.map(function (node) { return { node: node, math: false }; }))
      .sort(function (a, b) {
        return a.node.compareDocumentPosition(b.node) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1;
      });

    // Draws the given items (removing them from the queue), all at once.
    function draw(items) {
      items.forEach(function (item) { pending.splice(pending.indexOf(item), 1); });
      const formulas = items.filter(function (item) { return item.math; }).map(function (item) { return item.node; });
      const figures = items.filter(function (item) { return !item.math; });
      return Promise.all([
        formulas.length ? typeset(formulas, false) : null,
        figures.length ? plotly.then(function () { return Promise.all(figures.map(function (item) { return drawFigure(item.node); })); }) : null,
      ]);
    }

    let observer = null;
    if (window.IntersectionObserver) {
      observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          const item = pending.find(function (p) { return p.node === entry.target; });
          if (entry.isIntersecting && item) pending.unshift(pending.splice(pending.indexOf(item), 1)[0]);
        });
      }, { rootMargin: "300px 0px" });
      pending.forEach(function (item) { observer.observe(item.node); });
    }

    function rest() {
      if (!current() || !pending.length) return Promise.resolve();
      // pending[0] is the next in page order or the one the reader scrolled to
      const step = pending[0].math
        ? pending.filter(function (item) { return item.math; }).slice(0, FORMULAS_PER_STEP)
        : [pending[0]];
      return draw(step).then(idle).then(rest);
    }

    typeset([], true);
    return draw(pending.filter(function (item) { return inView(item.node); }))
      .then(function () {
        if (current()) site.firstScreen = { path: path, ms: performance.now() };
        return idle();
      })
      .then(rest)
      .finally(function () { if (observer) observer.disconnect(); })
      .then(function () {
        if (!current()) return;
        site.drawn = { path: path, ms: performance.now() };
        site.readyPath = path;
      });
  }

  document$.subscribe(function () {
    const path = location.pathname;
    site.readyPath = null;
    site.firstScreen = site.drawn = null;
    site.ready = drawPage(path).catch(function (error) { site.errors.push(String(error)); console.error(error); });
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
