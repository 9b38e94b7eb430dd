// Page script of the site: draw figures and typeset what maths is still TeX on every
// page (when Material's document$ emits: once per page load, and for every page swapped
// in, should the site turn Material's instant navigation back on), and restyle figures
// when the reader switches between the light and dark palettes. The site's formulas
// arrive typeset (dpo_ref/prerendered_math.py); MathJax is fetched only for a page with
// a formula that does not.
(function () {
  "use strict";

  const here = new URL(".", document.currentScript.src);
  const PLOTLY_SRC = new URL("../vendor/plotly/plotly-basic.min.js", here).href;
  const MATHJAX_SRC = new URL("../vendor/mathjax/tex-svg.js", here).href;
  const PLAYGROUND_SRC = [new URL("playground-core.js", here).href, new URL("playground.js", here).href];

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
    const spec = div._dpoSpec;
    const now = scheme();
    if (!spec || !spec.palettes[now] || div._dpoScheme === now) return Promise.resolve();
    div._dpoScheme = now;
    // trace colours (marker outlines in the background colour), then the layout's
    const restyles = (spec.restyles && spec.restyles[now]) || [];
    return restyles.reduce(function (done, call) {
      return done.then(function () { return window.Plotly.restyle(div, call[0], call[1]); });
    }, Promise.resolve()).then(function () { return window.Plotly.relayout(div, spec.palettes[now]); });
  }

  // A figure's JSON: a file the build wrote (the plot's data-spec, relative to the page
  // the figure came with: resolved when that page is drawn, since a swapped-in page
  // changes the address before the old page's figures are gone), fetched once; or a
  // script on the page (standalone pages) that registered it in window.dpoFigures.
  function resolveSpec(div) {
    if (div.dataset.spec && !div._dpoSpecUrl) div._dpoSpecUrl = new URL(div.dataset.spec, location.href).href;
  }

  function figureSpec(div) {
    const inline = (window.dpoFigures || {})[div.dataset.figure];
    if (inline) return Promise.resolve(inline);
    resolveSpec(div);
    if (!div._dpoSpecUrl) return Promise.reject(new Error("no data for figure " + div.dataset.figure));
    if (!div._dpoSpecLoad) {
      div._dpoSpecLoad = fetch(div._dpoSpecUrl).then(function (response) {
        if (!response.ok) throw new Error("could not load " + div._dpoSpecUrl + ": HTTP " + response.status);
        return response.json();
      });
    }
    return div._dpoSpecLoad;
  }

  // Drawn once, whoever asks first (the page's drawing pass, the reader's touch, a menu button).
  function drawFigure(div) {
    if (!div._dpoDrawn) div._dpoDrawn = figureSpec(div).then(function (spec) { return plotFigure(div, spec); });
    return div._dpoDrawn;
  }

  function plotFigure(div, spec) {
    const fig = spec.figure;
    div._dpoSpec = spec;
    div._dpoScheme = "default"; // the figure JSON is written for the light palette
    const first = firstView(div); // stays over the drawing until it is done
    return window.Plotly.newPlot(div, { data: fig.data, layout: fig.layout, frames: fig.frames || [], config: spec.config })
      .then(function () { return applyPalette(div); })
      .then(function () {
        followSliders(div);
        if (first) first.remove();
        div.classList.add("dpo-figure__plot--live");
      });
  }

  // A figure's dropdown menu is a row of buttons above it (dpo_ref/figures/html.py): a
  // press makes the figure interactive if it is not yet, then runs the choice's Plotly
  // command, as the hidden dropdown would have.
  document.addEventListener("click", function (event) {
    const choice = event.target.closest && event.target.closest(".dpo-figure__choice");
    if (!choice) return;
    const row = choice.parentElement;
    const div = document.getElementById(row.dataset.for);
    row.querySelectorAll(".dpo-figure__choice").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button === choice));
    });
    const drawn = div._dpoDrawn || hydrate(div);
    drawn.then(function () {
      const menu = div._dpoSpec.figure.layout.updatemenus[Number(choice.dataset.menu)];
      const command = menu.buttons[Number(choice.dataset.choice)];
      return window.Plotly[command.method].apply(null, [div].concat(command.args || []));
    }).catch(function (error) { site.errors.push(String(error)); console.error(error); });
  });

  // A figure with several sliders (layout.meta.dpo_states): each combination of the
  // sliders' positions has its own restyle, computed in Python; the sliders' own steps
  // do nothing ("skip"), and this applies the state of the current combination.
  function followSliders(div) {
    const meta = div.layout && div.layout.meta;
    const states = meta && meta.dpo_states;
    if (!states || div._dpoFollowing) return;
    div._dpoFollowing = true;
    div.on("plotly_sliderchange", function () {
      const key = div.layout.sliders.map(function (s) { return s.active; }).join(",");
      const update = states.states[key];
      if (update) window.Plotly.restyle(div, update, states.traces);
    });
  }

  // Figures drawn ahead of time (an SVG in the page) become interactive Plotly figures
  // when the reader touches, hovers or focuses one, or, once the reader has interacted
  // with the page at all, when one comes near the screen. Until then plotly.js is neither
  // downloaded nor parsed, which keeps the main thread free while the page appears.
  function hydrate(div) {
    if (!div._dpoHydrating) {
      figureSpec(div).catch(function () {}); // fetched while plotly.js loads; drawFigure reports a failure
      div._dpoHydrating = loadPlotly().then(function () { return drawFigure(div); })
        .catch(function (error) { site.errors.push(String(error)); console.error(error); });
    }
    return div._dpoHydrating;
  }

  let engaged = false;
  const nearScreen = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) { nearScreen.unobserve(entry.target); hydrate(entry.target); }
    });
  }, { rootMargin: "200px 0px" }) : null;

  // The SVG drawn ahead of time sits over the figure's (empty) plot box, not inside it:
  // Plotly looks up its own class names inside the box.
  function firstView(div) {
    return div.parentElement.querySelector(":scope > .dpo-figure__static");
  }

  // A first view is in the page (near the top), or a file named by data-src (further down).
  function hasFirstView(div) {
    const first = firstView(div);
    return !!first && (!!first.querySelector("svg") || !!first.dataset.src);
  }

  function staticFigures() {
    return Array.from(document.querySelectorAll(".dpo-figure__plot"))
      .filter(function (div) { return hasFirstView(div) && !div._dpoHydrating; });
  }

  // First views kept out of the page are fetched when the figure comes within a screen of
  // the reader's (or its content tab is opened), and put in its box. A figure the reader
  // makes interactive first does not need it.
  function fetchFirstView(box) {
    return fetch(new URL(box.dataset.src, location.href)).then(function (response) {
      if (!response.ok) throw new Error("could not load " + box.dataset.src + ": HTTP " + response.status);
      return response.text();
    }).then(function (views) {
      if (box.isConnected && !box.firstElementChild) box.innerHTML = views;
    }).catch(function (error) { site.errors.push(String(error)); console.error(error); });
  }
  const viewsNear = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) { viewsNear.unobserve(entry.target); fetchFirstView(entry.target); }
    });
  }, { rootMargin: "100% 0px" }) : null;

  function watchFirstViews() {
    document.querySelectorAll(".dpo-figure__static[data-src]").forEach(function (box) {
      if (box.firstElementChild) return;
      if (viewsNear) viewsNear.observe(box); else fetchFirstView(box);
    });
  }

  function engage() {
    if (engaged) return;
    engaged = true;
    ["scroll", "pointermove", "keydown", "touchstart"].forEach(function (type) { window.removeEventListener(type, engage, true); });
    idle().then(loadPlotly).catch(function () {});
    if (nearScreen) staticFigures().forEach(function (div) { nearScreen.observe(div); });
    watchPlaygrounds();
  }
  ["scroll", "pointermove", "keydown", "touchstart"].forEach(function (type) {
    window.addEventListener(type, engage, { capture: true, passive: true });
  });

  function prepareStatic(div) {
    const first = firstView(div);
    first.tabIndex = 0; // a keyboard reaches the figure, and focusing it makes it interactive
    ["pointerenter", "pointerdown", "touchstart", "focusin"].forEach(function (type) {
      div.parentElement.addEventListener(type, function () { hydrate(div); }, { once: true, passive: true });
    });
    if (engaged && nearScreen) nearScreen.observe(div);
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

  // Formulas that are still TeX: arithmatex's containers not typeset at build time (the
  // example notebooks' Markdown maths is written as such containers too, by
  // dpo_ref/site/example_pages.py).
  function untypeset() {
    return Array.from(document.querySelectorAll(".arithmatex"))
      .filter(function (node) { return !node.querySelector("mjx-container"); });
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
    document.querySelectorAll(".dpo-figure__plot").forEach(resolveSpec);
    staticFigures().forEach(prepareStatic);
    watchFirstViews();
    const plots = Array.from(document.querySelectorAll(".dpo-figure__plot"))
      .filter(function (div) { return !hasFirstView(div); });
    const plotly = plots.length ? loadPlotly() : Promise.resolve();
    plots.forEach(function (div) { figureSpec(div).catch(function () {}); }); // fetched while plotly.js loads
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
    // Reading scroll widths forces a layout: done once the page is drawn, when the layout is
    // clean and reading it is cheap, and before the page says it is ready.
    return draw(pending.filter(function (item) { return inView(item.node); }))
      .then(function () {
        if (current()) site.firstScreen = { path: path, ms: performance.now() };
        return idle();
      })
      .then(rest)
      .finally(function () { if (observer) observer.disconnect(); })
      .then(idle)
      .then(function () {
        if (!current()) return;
        markScrollRegions();
        site.drawn = { path: path, ms: performance.now() };
        site.readyPath = path;
      });
  }

  // A playground (dpo_ref/figures/playground.py) starts, like a figure drawn ahead of time,
  // when the reader touches, hovers or focuses it, or, once the reader has interacted with
  // the page at all, when it comes near the screen: its trainer, its page script and
  // plotly.js are fetched then, not while the page appears. Train pressed before that
  // starts it and trains at once.
  function startPlayground(root) {
    if (root._dpoStarting) return;
    root._dpoStarting = true;
    Promise.all([loadPlotly()].concat(PLAYGROUND_SRC.map(loadScript)))
      .then(function () { window.dpoPlayground.start(root); })
      .catch(function (error) { site.errors.push(String(error)); console.error(error); });
  }
  const playgroundsNear = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) { playgroundsNear.unobserve(entry.target); startPlayground(entry.target); }
    });
  }, { rootMargin: "200px 0px" }) : null;

  function watchPlaygrounds() {
    document.querySelectorAll(".dpo-playground").forEach(function (root) {
      if (!root._dpoStarting && playgroundsNear) playgroundsNear.observe(root);
    });
  }

  function preparePlaygrounds() {
    document.querySelectorAll(".dpo-playground").forEach(function (root) {
      if (root._dpoPrepared) return;
      root._dpoPrepared = true;
      ["pointerenter", "pointerdown", "touchstart", "focusin"].forEach(function (type) {
        root.addEventListener(type, function () { startPlayground(root); }, { once: true, passive: true });
      });
      const play = root.querySelector('[data-action="play"]');
      play.addEventListener("click", function () {
        if (!root._dpoWidget) { root.dataset.autoplay = "1"; startPlayground(root); }
      });
    });
    if (engaged) watchPlaygrounds();
  }

  document$.subscribe(function () {
    const path = location.pathname;
    preparePlaygrounds();
    prepareStepper();
    preparePipeline();
    site.readyPath = null;
    site.firstScreen = site.drawn = null;
    site.ready = drawPage(path).catch(function (error) { site.errors.push(String(error)); console.error(error); });
  });

  // Transitions off while the reader switches palettes, so every colour changes at once.
  // Material does this with a rule keyed on an attribute its script also sets and removes
  // at every page load, which restyled the whole page twice per load; the build drops
  // that rule (dpo_ref/site/hooks.py). The toggle's radio inputs fire "change"; listening
  // in the capture phase runs before Material's own handler changes the palette.
  document.addEventListener("change", function (event) {
    if (!event.target.closest || !event.target.closest("[data-md-component=palette]")) return;
    document.body.classList.add("dpo-palette-switching");
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { document.body.classList.remove("dpo-palette-switching"); });
    });
  }, true);

  // Light/dark toggle: Material sets data-md-color-scheme on <body>. (Figures drawn ahead
  // of time follow it through CSS custom properties.)
  new MutationObserver(function () {
    if (!window.Plotly) return;
    document.querySelectorAll(".dpo-figure__plot.js-plotly-plot").forEach(applyPalette);
  }).observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });

  // Content tabs marked as a stepper (<div class="dpo-stepper" markdown> around them):
  // Previous/Next buttons under the tabs, and "Step k of n", kept in step with the tabs.
  function prepareStepper() {
    document.querySelectorAll(".dpo-stepper > .tabbed-set").forEach(function (set) {
      if (set.querySelector(".dpo-stepper__nav")) return;
      const inputs = Array.from(set.querySelectorAll(":scope > input"));
      if (inputs.length < 2) return;
      const nav = document.createElement("div");
      nav.className = "dpo-stepper__nav";
      const prev = document.createElement("button");
      const next = document.createElement("button");
      const where = document.createElement("span");
      prev.type = next.type = "button";
      prev.className = next.className = "md-button dpo-stepper__button";
      prev.textContent = "← Previous step";
      next.textContent = "Next step →";
      where.className = "dpo-stepper__where";
      where.setAttribute("aria-live", "polite");
      nav.append(prev, where, next);
      set.appendChild(nav);
      const current = function () { return Math.max(0, inputs.findIndex(function (i) { return i.checked; })); };
      const show = function () {
        const k = current();
        where.textContent = "Step " + (k + 1) + " of " + inputs.length;
        prev.disabled = k === 0;
        next.disabled = k === inputs.length - 1;
      };
      const go = function (delta) {
        const k = Math.min(inputs.length - 1, Math.max(0, current() + delta));
        const label = set.querySelector('label[for="' + inputs[k].id + '"]');
        if (label) label.click(); else { inputs[k].checked = true; }
        show();
      };
      prev.addEventListener("click", function () { go(-1); });
      next.addEventListener("click", function () { go(1); });
      inputs.forEach(function (input) { input.addEventListener("change", show); });
      show();
    });
  }

  // The pipeline diagram's stage boxes (buttons with data-dpo-tab) select the content tab
  // of the same name further down the page and bring it into view: the tab's labels and
  // details scrolled to just under the sticky header (bringing only the label into view
  // left the details below the bottom of the screen).
  function preparePipeline() {
    document.querySelectorAll("[data-dpo-tab]").forEach(function (button) {
      if (button._dpoReady) return;
      button._dpoReady = true;
      button.addEventListener("click", function () {
        const name = button.getAttribute("data-dpo-tab");
        const label = Array.from(document.querySelectorAll(".tabbed-labels > label"))
          .find(function (l) { return l.textContent.trim() === name; });
        if (!label) return;
        label.click();
        document.querySelectorAll("[data-dpo-tab]").forEach(function (b) {
          b.setAttribute("aria-pressed", String(b.getAttribute("data-dpo-tab") === name));
        });
        const set = label.closest(".tabbed-set");
        const header = document.querySelector(".md-header");
        const below = header ? header.getBoundingClientRect().bottom : 0;
        const top = window.scrollY + set.getBoundingClientRect().top - below - 8;
        const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
        window.scrollTo({ top: Math.max(0, top), behavior: still ? "auto" : "smooth" });
      });
    });
  }

  // A region that scrolls sideways (a wide table, a long code line) must be reachable by
  // keyboard: such regions get tabindex 0 and a name. Checked again when the window resizes.
  function markScrollRegions() {
    document.querySelectorAll(".md-typeset__scrollwrap, .md-typeset pre > code, .md-typeset div.arithmatex, .jp-OutputArea-output pre, .highlight pre, .highlight-ipynb, .jp-RenderedText pre")
      .forEach(function (el) {
        const scrolls = el.scrollWidth > el.clientWidth + 1;
        if (scrolls && !el.hasAttribute("tabindex")) {
          el.setAttribute("tabindex", "0");
          if (!/^(code|pre)$/i.test(el.tagName) && !el.hasAttribute("role")) {
            el.setAttribute("role", "region");
            el.setAttribute("aria-label", el.classList.contains("arithmatex") ? "formula, scrolls sideways"
              : el.classList.contains("highlight-ipynb") ? "code, scrolls sideways" : "table, scrolls sideways");
          }
          el.dataset.dpoScroll = "1";
        } else if (!scrolls && el.dataset.dpoScroll) {
          el.removeAttribute("tabindex");
          delete el.dataset.dpoScroll;
        }
      });
  }
  // Which ends of a region that scrolls hide more of it (site.css fades those): the far end
  // ("1", as marked), both ("middle"), or only the start ("end").
  document.addEventListener("scroll", function (event) {
    const el = event.target;
    if (!el.dataset || !el.dataset.dpoScroll) return;
    const atEnd = el.scrollLeft + el.clientWidth >= el.scrollWidth - 1;
    el.dataset.dpoScroll = atEnd ? "end" : el.scrollLeft > 0 ? "middle" : "1";
  }, { capture: true, passive: true });
  let resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(markScrollRegions, 200);
  });

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
