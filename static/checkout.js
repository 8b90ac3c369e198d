// Small enhancements; every page works without them.
(function () {
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      if (navigator.clipboard) navigator.clipboard.writeText(b.dataset.copy);
    });
  });

  // In a shop's frame (embed.js), tell the shop what happens. Messages go only to the
  // checkout's shop origins listed on the page, never to "*": a page framing us from
  // anywhere else receives nothing.
  var body = document.body;
  var checkoutId = body.dataset.checkoutId;
  var origins = (body.dataset.parentOrigins || "").split(" ").filter(Boolean);
  var framed = window.parent !== window;
  function tell(message) {
    if (!framed || !checkoutId) return;
    message.checkout_id = checkoutId;
    origins.forEach(function (origin) {
      try { window.parent.postMessage(message, origin); } catch (e) { /* bad origin */ }
    });
  }
  var lastStatus = null;
  function tellStatus(status) {
    if (!status || status === lastStatus) return;
    lastStatus = status;
    tell({ type: "checkout.status", status: status });
  }
  tell({ type: "checkout.ready" });

  // The provider's cashier refuses to be framed: leave the frame for it.
  var cashier = document.getElementById("continue-to-cashier");
  if (cashier && /^https?:\/\//i.test(cashier.href)) {
    if (framed) {
      // embed.js moves the shop's page; a plain iframe is moved from here, which browsers
      // may refuse without a click: the link stays for that.
      tell({ type: "checkout.redirect", url: cashier.href });
      try { window.top.location.href = cashier.href; } catch (e) { /* the link remains */ }
    } else {
      window.location.replace(cashier.href);
    }
  }

  var live = document.getElementById("live-status");
  if (!live) return;
  tellStatus(live.dataset.status);
  if (live.dataset.final === "true") return;
  var tries = 0;
  function poll() {
    if (++tries > 720) return; // stop after about an hour
    fetch(live.dataset.statusUrl, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s) tellStatus(s.status);
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
