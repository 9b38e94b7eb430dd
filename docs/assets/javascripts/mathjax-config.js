// MathJax 3 settings, read by the vendored tex-svg.js that loads right after this file.
// Typesetting is started by site.js on every page (instant navigation included), and
// only inside the containers that pymdownx.arithmatex writes.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
  svg: { fontCache: "global" },
  startup: { typeset: false },
};
