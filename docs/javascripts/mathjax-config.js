// MathJax 3 for the course site (loaded from a local copy, see docs/hooks.py).
// Markdown pages: pymdownx.arithmatex (generic) wraps math in \( \) / \[ \] inside
// .arithmatex elements. Notebook pages: markdown cells keep $...$ and $$...$$.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    // ".+", not ".*|": an element without a class (a <p> of a notebook cell) must inherit its
    // parent's processing, and ".*|" would match its empty class and skip it
    ignoreHtmlClass: ".+",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown",
  },
};

// Material's instant navigation swaps pages without a reload: typeset the new one.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (window.MathJax && MathJax.typesetPromise) {
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
