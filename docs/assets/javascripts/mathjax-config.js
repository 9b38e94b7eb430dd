// MathJax 3 settings, read by the vendored tex-svg.js that loads right after this file.
// Typesetting is started by site.js on every page (instant navigation included), and
// only inside the containers that pymdownx.arithmatex writes (\( \) and \[ \]) and the
// Markdown cells of example notebooks (which keep Jupyter's $ and $$).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  // No ignoreHtmlClass/processHtmlClass recipe: site.js passes MathJax the containers to
  // typeset, and the recipe would skip the unclassed <p> inside notebook Markdown cells.
  svg: { fontCache: "global" },
  startup: { typeset: false },
};
