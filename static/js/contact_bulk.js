// Bulk bar: show the input that fits the chosen action; count and enable on selection.
(function () {
  function sync() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var action = form.querySelector("#bulk-action").value;
    form.querySelectorAll("[data-for]").forEach(function (el) {
      el.classList.toggle("d-none", el.dataset.for.split(" ").indexOf(action) < 0);
    });
    var n = document.querySelectorAll(".row-check:checked").length;
    document.getElementById("selected-count").textContent = n;
    document.getElementById("bulk-apply").disabled = n === 0;
    form.querySelectorAll("[data-needs-selection]").forEach(function (button) { button.disabled = n === 0; });
  }
  document.addEventListener("change", function (e) {
    if (e.target.id === "select-all") {
      document.querySelectorAll(".row-check").forEach(function (box) { box.checked = e.target.checked; });
    }
    if (e.target.closest("#results")) sync();
  });
  document.addEventListener("DOMContentLoaded", sync);
  document.body.addEventListener("htmx:afterSwap", sync);
})();
