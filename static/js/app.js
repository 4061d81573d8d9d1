// Our own small glue: toasts (server messages and HX-Trigger "toast" events) and confirm dialogs.
(function () {
  function showToast(text, level) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast align-items-center border-0 text-bg-" + (level || "success");
    el.setAttribute("role", "status");
    var wrap = document.createElement("div"); wrap.className = "d-flex";
    var body = document.createElement("div"); body.className = "toast-body"; body.textContent = text;
    var close = document.createElement("button"); close.type = "button";
    close.className = "btn-close btn-close-white me-2 m-auto"; close.setAttribute("data-bs-dismiss", "toast");
    wrap.appendChild(body); wrap.appendChild(close); el.appendChild(wrap); box.appendChild(el);
    bootstrap.Toast.getOrCreateInstance(el).show();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".toast[data-autoshow]").forEach(function (el) {
      bootstrap.Toast.getOrCreateInstance(el).show();
    });
  });
  // Views send HX-Trigger: {"toast": {"message": "...", "level": "success"}}
  document.body.addEventListener("toast", function (evt) {
    showToast(evt.detail.message, evt.detail.level);
  });
  window.scrmToast = showToast;
})();
