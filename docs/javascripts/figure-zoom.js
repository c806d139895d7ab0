// Notebook figures at full size (the course site, notebook pages).
// A notebook's figures are drawn wide (up to ~1500 px) and the page's output column is ~580 px
// on a laptop screen, so their labels are too small to read. A figure shown smaller than it
// was drawn gets a zoom cursor; a click shows it over the page at up to the window's size,
// and a click or Escape closes it. No library, nothing fetched.
function dslibFigureZoom() {
  const close = () => document.querySelectorAll(".dslib-zoom").forEach((e) => e.remove());
  for (const img of document.querySelectorAll(".jp-OutputArea-output img")) {
    const mark = () => {
      if (img.naturalWidth > 1.1 * img.clientWidth) img.classList.add("dslib-zoomable");
    };
    if (img.complete) mark(); else img.addEventListener("load", mark);
    img.addEventListener("click", () => {
      if (!img.classList.contains("dslib-zoomable")) return;
      const overlay = document.createElement("div");
      overlay.className = "dslib-zoom";
      const big = document.createElement("img");
      big.src = img.currentSrc || img.src;
      big.alt = img.alt;
      overlay.appendChild(big);
      overlay.addEventListener("click", close);
      document.body.appendChild(overlay);
    });
  }
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });
}

if (typeof document$ !== "undefined") {
  document$.subscribe(dslibFigureZoom);  // Material: once per page, instant navigation too
} else {
  document.addEventListener("DOMContentLoaded", dslibFigureZoom);
}
