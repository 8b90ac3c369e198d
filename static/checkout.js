// Small enhancements; every page works without them.
(function () {
  // Copy buttons; the result is read out by the live region #copy-status ("Copied").
  var copyStatus = document.getElementById("copy-status");
  var copyTimer = null;
  function announce(text) {
    if (!copyStatus) return;
    copyStatus.textContent = "";
    // A fresh text node after a tick, so the same word is announced again.
    setTimeout(function () { copyStatus.textContent = text; }, 50);
    clearTimeout(copyTimer);
    copyTimer = setTimeout(function () { copyStatus.textContent = ""; }, 4000);
  }
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      var ok = function () { announce(copyStatus && copyStatus.dataset.copied); };
      var bad = function () { announce(copyStatus && copyStatus.dataset.failed); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(b.dataset.copy).then(ok, bad);
      } else bad();
    });
  });

  // Time left to pay, from <time id="expires-at" datetime>, every second.
  var expires = document.getElementById("expires-at");
  var countdownLine = document.getElementById("countdown-line");
  var countdown = document.getElementById("countdown");
  var deadline = expires ? Date.parse(expires.getAttribute("datetime")) : NaN;
  if (countdownLine && countdown && !isNaN(deadline)) {
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    var tick = function () {
      var left = Math.max(0, Math.floor((deadline - Date.now()) / 1000));
      if (left === 0) {
        countdownLine.textContent = countdownLine.dataset.expired;
        return;
      }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), sec = left % 60;
      countdown.textContent = (h ? h + ":" + two(m) : two(m)) + ":" + two(sec);
      setTimeout(tick, 1000 - (Date.now() % 1000));
    };
    countdownLine.hidden = false;
    tick();
  }

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

  // In a frame, tell embed.js our height so the frame fits its content (nothing cut off).
  if (framed && checkoutId) {
    var lastHeight = 0;
    var sendHeight = function () {
      var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
      if (height && height !== lastHeight) {
        lastHeight = height;
        tell({ type: "checkout.resize", height: height });
      }
    };
    if (window.ResizeObserver) new ResizeObserver(sendHeight).observe(document.documentElement);
    window.addEventListener("load", sendHeight);
    sendHeight();
  }

  // The form: an error summary takes focus; a method change swaps the fields in place,
  // keeping what was typed; what was typed is kept for this tab (a failed payment at the
  // provider brings the shopper back to an empty form otherwise).
  // Back from the cashier may show the form from the browser's page cache, as it was
  // before Pay: ask the server again, which offers to continue there or pay another way.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && document.getElementById("payment-form")) window.location.reload();
  });
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
  var form = document.getElementById("payment-form");
  if (form && checkoutId) setUpForm(form);

  function setUpForm(form) {
    var storeKey = "checkout:" + checkoutId + ":payer";
    var saved = {};
    try { saved = JSON.parse(sessionStorage.getItem(storeKey) || "{}") || {}; } catch (e) { saved = {}; }
    function fields() { return form.querySelectorAll("#payer-fields input[name]"); }
    function remember() {
      // This tab only, cleared once the checkout ends; never the date of birth.
      fields().forEach(function (input) {
        if (input.name !== "birth_date") saved[input.name] = input.value;
      });
      try { sessionStorage.setItem(storeKey, JSON.stringify(saved)); } catch (e) { /* private mode */ }
    }
    function restore() {
      fields().forEach(function (input) {
        if (!input.value && saved[input.name]) input.value = saved[input.name];
      });
    }
    restore();
    form.addEventListener("input", remember);
    var busy = null;
    form.querySelectorAll("input[name=method]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        remember();
        var url = form.dataset.pageUrl + "?method=" + encodeURIComponent(radio.value);
        var request = busy = fetch(url, { headers: { Accept: "text/html" } })
          .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
          .then(function (html) {
            if (request !== busy) return; // a later change won
            var next = new DOMParser().parseFromString(html, "text/html");
            var fieldsNow = document.getElementById("payer-fields");
            var fieldsNext = next.getElementById("payer-fields");
            if (!fieldsNow || !fieldsNext) { postSwitch(); return; }
            fieldsNow.replaceWith(document.importNode(fieldsNext, true));
            ["csrf_token", "shown_method"].forEach(function (id) {
              var a = document.getElementById(id), b = next.getElementById(id);
              if (a && b) a.value = b.value;
            });
            form.action = url;
            form.querySelectorAll("label.choice").forEach(function (label) {
              label.classList.toggle("current", label.contains(radio));
            });
            restore();
            try { history.replaceState(null, "", url); } catch (e) { /* file: or sandboxed */ }
          })
          .catch(postSwitch);
      });
    });
    function postSwitch() { // as without JavaScript: the server shows the method's fields
      var flag = document.createElement("input");
      flag.type = "hidden";
      flag.name = "switch";
      flag.value = "1";
      form.appendChild(flag);
      form.submit();
    }
  }

  // The provider's cashier refuses to be framed: leave the frame for it.
  // Never when the shopper chooses (the link opened again, data-resume) or came Back from
  // the cashier to this page: that would send them straight back.
  var cashier = document.getElementById("continue-to-cashier");
  var navigation = window.performance && performance.getEntriesByType
    ? performance.getEntriesByType("navigation")[0] : null;
  var cameBack = !!navigation && navigation.type === "back_forward";
  if (cashier && !cashier.dataset.resume && !cameBack && /^https?:\/\//i.test(cashier.href)) {
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
  // The checkout ended (not a failure the shopper may retry): forget what was typed.
  if (/^(paid|partially_paid|cancelled|expired)$/.test(live.dataset.status || "") && checkoutId) {
    try { sessionStorage.removeItem("checkout:" + checkoutId + ":payer"); } catch (e) { /* none */ }
  }
  tellStatus(live.dataset.status);
  if (live.dataset.final === "true") return;
  var tries = 0;
  function poll() {
    if (++tries > 720) return; // stop after about an hour
    fetch(live.dataset.statusUrl, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s) tellStatus(s.status);
        // A part-paid page waits for the rest (the same account takes it): it moves once paid.
        var waitsForRest = s && s.status === "partially_paid" && live.dataset.status === "partially_paid";
        var moved = s && !waitsForRest && (s.final || (s.status === "open" && s.attempt_status !== "pending"));
        if (moved) {
          if (live.dataset.reload) window.location.reload();
          else window.location.href = live.dataset.doneUrl;
        } else setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 3000);
})();
