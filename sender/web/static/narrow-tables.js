// On a narrow screen a wide table scrolls sideways inside its own region, not the page.
// The region is focusable and named, so a keyboard can scroll it and a screen reader
// announces it. Tables already inside a region (the workspace's) are left alone.
(function () {
  "use strict";
  function name(table) {
    var caption = table.querySelector("caption");
    if (caption && caption.textContent.trim()) return caption.textContent.trim();
    var section = table.closest("section");
    var heading = section && section.querySelector("h1, h2, h3");
    return heading ? heading.textContent.trim() : "Table";
  }
  // Two regions of one name fail axe's landmark-unique rule and sound alike to a
  // screen reader: a repeated name gets its number.
  function unique(label) {
    var taken = {};
    document.querySelectorAll("[role=region][aria-label]").forEach(function (el) {
      taken[el.getAttribute("aria-label")] = true;
    });
    if (!taken[label]) return label;
    for (var n = 2; ; n++) {
      if (!taken[label + " (" + n + ")"]) return label + " (" + n + ")";
    }
  }
  function wrap(root) {
    // Only where the screen is narrow: on a desktop the regions would be noise to a screen reader.
    if (!window.matchMedia("(max-width: 40rem)").matches) return;
    root.querySelectorAll("main table").forEach(function (table) {
      if (table.closest("[role=region]")) return;
      var region = document.createElement("div");
      region.setAttribute("role", "region");
      region.setAttribute("tabindex", "0");
      region.setAttribute("aria-label", unique(name(table)));
      region.className = "table-scroll";
      table.parentNode.insertBefore(region, table);
      region.appendChild(table);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { wrap(document); });
  // htmx replaces live fragments: wrap what they bring.
  document.addEventListener("htmx:afterSwap", function (event) { wrap(event.target); });
})();
