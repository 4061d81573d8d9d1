// SOP inbox: the Copy button of each task's message (our own; no clipboard library).
// <button data-copy-target="ID" data-copied="…" data-copy-failed="…"> copies the text of #ID; the two
// messages arrive translated from the template, so this file holds no user-visible text.
(function () {
  "use strict";
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }
  function report(button, ok) {
    var text = ok ? button.dataset.copied : button.dataset.copyFailed;
    if (window.scrmToast && text) window.scrmToast(text, ok ? "success" : "warning");
  }
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copyTarget);
    if (!source) return;
    var text = source.innerText;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { report(button, true); },
        function () { report(button, fallbackCopy(text)); }
      );
    } else {
      report(button, fallbackCopy(text));
    }
  });
})();

// Team tasks: a header checkbox <input data-select-all="NAME"> ticks every checkbox named NAME in its form.
(function () {
  "use strict";
  document.addEventListener("change", function (evt) {
    var all = evt.target.closest("[data-select-all]");
    if (!all) return;
    var form = all.closest("form") || document;
    form.querySelectorAll('input[type=checkbox][name="' + all.dataset.selectAll + '"]').forEach(function (box) {
      box.checked = all.checked;
    });
  });
})();
