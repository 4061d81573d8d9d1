// Segment pages: the tag picker's button shows the chosen tags; the "all members" bulk bar shows the input
// that fits its action (and only that one is submitted). Text comes from the page; none is written here.
(function () {
  "use strict";

  function syncTagPicker(picker) {
    var button = picker.querySelector("[data-bs-toggle]");
    var names = Array.prototype.map.call(picker.querySelectorAll("input:checked"), function (box) {
      return box.labels[0] ? box.labels[0].textContent : box.value;
    });
    button.textContent = names.length ? names.join("、") : button.dataset.empty;
  }

  function syncAll(root) {
    (root || document).querySelectorAll(".tag-picker").forEach(syncTagPicker);
    var form = document.getElementById("segment-bulk-form");
    if (!form) return;
    var action = form.querySelector("#segment-bulk-action").value;
    form.querySelectorAll("[data-for]").forEach(function (el) {
      var shown = el.dataset.for.split(" ").indexOf(action) >= 0;
      el.classList.toggle("d-none", !shown);
      el.disabled = !shown;
    });
  }

  document.addEventListener("change", function (e) {
    var picker = e.target.closest(".tag-picker");
    if (picker) syncTagPicker(picker);
    if (e.target.id === "segment-bulk-action") syncAll();
  });
  // The preview rewrites each condition's error slot out of band; a condition whose slot is now empty loses its
  // red marks (they were drawn with the tree, when its value was still missing).
  function syncErrors() {
    document.querySelectorAll("#rule-tree .rule-error").forEach(function (slot) {
      var node = slot.parentElement;
      var wrong = slot.textContent.trim() !== "";
      node.classList.toggle("rule-invalid", wrong);
      if (!wrong) {
        node.querySelectorAll(":scope > div > .is-invalid, :scope > div > * > .is-invalid").forEach(function (el) {
          el.classList.remove("is-invalid");
        });
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { syncAll(); });
  document.body.addEventListener("htmx:oobAfterSwap", syncErrors);
  document.body.addEventListener("htmx:afterSwap", function (e) { syncAll(e.target); });
})();
