// Fixed lists (static segments): "Save as list" in the contact list's bulk bar (segments/_save_selection.html)
// and the paste box of the list pages (segments/static_form.html).
(function () {
  if (window.scrmStaticSegments) return; // loaded twice (base page and a partial) must not bind twice
  window.scrmStaticSegments = true;

  // --- Save as list: enabled with a selection; the modal says how many; saving needs a name.
  function syncSelection() {
    var button = document.getElementById("save-selection");
    if (!button) return;
    var n = document.querySelectorAll(".row-check:checked").length;
    button.disabled = n === 0;
    document.querySelectorAll(".save-selection-count").forEach(function (el) { el.textContent = n; });
    syncName();
  }
  function syncName() {
    var name = document.getElementById("save-selection-name");
    var submit = document.getElementById("save-selection-submit");
    if (name && submit) submit.disabled = name.value.trim() === "";
  }
  document.addEventListener("change", function (e) {
    // After the page's own "select all" handler has ticked the boxes, whatever order the scripts load in.
    if (e.target.closest && e.target.closest("#results")) setTimeout(syncSelection, 0);
  });
  document.addEventListener("input", function (e) {
    if (e.target.id === "save-selection-name") syncName();
  });
  // Enter in the name saves the list, wherever the include sits in #bulk-form: left to the browser, it would
  // press the form's first submit button, which may be the bulk action's "Apply to selected".
  document.addEventListener("keydown", function (e) {
    if (e.target.id !== "save-selection-name" || e.key !== "Enter" || e.isComposing) return;
    e.preventDefault();
    var submit = document.getElementById("save-selection-submit");
    if (submit && !submit.disabled) submit.click();
  });
  document.addEventListener("show.bs.modal", function (e) {
    if (e.target.id === "save-selection-modal") syncSelection();
  });
  document.addEventListener("shown.bs.modal", function (e) {
    if (e.target.id === "save-selection-modal") document.getElementById("save-selection-name").focus();
  });
  document.addEventListener("DOMContentLoaded", syncSelection);
  document.addEventListener("htmx:afterSwap", syncSelection);

  // --- The paste box: a paste longer than the server reads is stopped here, with a hint to upload a file.
  function tooLong(form) {
    var limit = parseInt(form.dataset.maxPasteBytes || "0", 10);
    var box = form.querySelector("textarea[name=entries]");
    var hint = document.getElementById("entries-too-long");
    if (!limit || !box || !hint) return false;
    var over = new Blob([box.value]).size > limit;
    box.classList.toggle("is-invalid", over);
    hint.classList.toggle("d-none", !over);
    return over;
  }
  document.addEventListener("submit", function (e) {
    if (e.target.id === "list-form" && tooLong(e.target)) e.preventDefault();
  });
  document.addEventListener("htmx:confirm", function (e) {
    var form = e.target.closest && e.target.closest("#list-form");
    if (form && tooLong(form)) e.preventDefault();
  });
})();
