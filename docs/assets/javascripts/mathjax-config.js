// MathJax 3 settings, read by the vendored tex-svg.js when site.js fetches it (only for
// formulas that were not typeset at build time) and by dpo_ref/prerendered_math.py,
// which typesets the site's formulas with them. site.js starts typesetting, and only
// inside the containers that pymdownx.arithmatex writes (\( \) and \[ \]; the example
// notebooks' $ and $$ become such containers at build time, dpo_ref/site/example_pages.py).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  // No ignoreHtmlClass/processHtmlClass recipe: site.js passes MathJax the containers to
  // typeset, and the recipe would skip the unclassed <p> inside notebook Markdown cells.
  svg: { fontCache: "global" },
  startup: { typeset: false },
};
