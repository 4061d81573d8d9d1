// SOP template and step forms: show the fields that fit the chosen trigger / channel / timing, and insert a
// variable chip's placeholder at the cursor of the message box.
(function () {
  if (window.scrmSopTemplates) return;
  window.scrmSopTemplates = true;

  function valueOf(form, name) {
    var field = form.elements[name];
    return field ? field.value : "";
  }
  function sync(form) {
    form.querySelectorAll("[data-show-for]").forEach(function (el) {
      var show = el.dataset.showFor.split(" ").some(function (token) {
        var parts = token.split(":");
        return valueOf(form, parts[0]) === parts[1];
      });
      el.classList.toggle("d-none", !show);
    });
  }
  function syncAll() {
    document.querySelectorAll("form[data-sop-toggle]").forEach(sync);
  }
  document.addEventListener("change", function (e) {
    var form = e.target.closest && e.target.closest("form[data-sop-toggle]");
    if (form) sync(form);
  });
  document.addEventListener("DOMContentLoaded", syncAll);

  document.addEventListener("click", function (e) {
    var chip = e.target.closest && e.target.closest("[data-insert]");
    if (!chip) return;
    e.preventDefault();
    var box = document.querySelector("textarea[data-variable-target]");
    if (!box) return;
    var text = chip.dataset.insert;
    var start = box.selectionStart, end = box.selectionEnd;
    box.setRangeText(text, start, end, "end");
    box.focus();
    box.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();
