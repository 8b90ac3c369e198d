// Small enhancements; every page works without them.
(function () {
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      if (navigator.clipboard) navigator.clipboard.writeText(b.dataset.copy);
    });
  });
  var live = document.getElementById("live-status");
  if (!live || live.dataset.final === "true") return;
  var tries = 0;
  function poll() {
    if (++tries > 720) return; // stop after about an hour
    fetch(live.dataset.statusUrl, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        var moved = s && (s.final || (s.status === "open" && s.attempt_status !== "pending"));
        if (moved) {
          if (live.dataset.reload) window.location.reload();
          else window.location.href = live.dataset.doneUrl;
        } else setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 3000);
})();
