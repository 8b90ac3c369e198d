// Embeds a checkout in a shop's page. No dependencies.
//
//   <script src="https://<checkout host>/static/embed.js"></script>
//   Checkout.onEvent(function (event) { ... });   // {type, checkout_id, status?}
//   Checkout.mount(checkoutUrl, "#pay");          // an iframe inside the element
//   Checkout.open(checkoutUrl);                   // or a modal overlay with a close button
//
// Events: checkout.ready (a page of the checkout loaded), checkout.status (with `status`:
// open, pending, paid, partially_paid, expired, cancelled; may repeat), checkout.redirect
// (the shopper goes to the provider's payment page: this page navigates there), and
// checkout.closed (the shopper closed the overlay). A mounted frame takes the height of its
// page (the page posts it; only from the checkout's origin), unless {height} fixes it. Trust only your server's view of a
// payment (the API or the webhook), never these events.
(function () {
  "use strict";
  if (window.Checkout && window.Checkout.mount) return;

  var listeners = [];
  var frames = []; // {iframe, origin}

  function originOf(url) {
    return new URL(url, window.location.href).origin;
  }

  function emit(event) {
    listeners.slice().forEach(function (callback) {
      try { callback(event); } catch (e) { setTimeout(function () { throw e; }); }
    });
  }

  window.addEventListener("message", function (event) {
    // Only messages from a checkout frame we made, sent from the checkout's own origin.
    var frame = null;
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].iframe.contentWindow === event.source) frame = frames[i];
    }
    if (!frame || event.origin !== frame.origin) return;
    var data = event.data;
    if (!data || typeof data.type !== "string" || data.type.indexOf("checkout.") !== 0) return;
    var copy = { type: data.type, checkout_id: String(data.checkout_id || "") };
    if (copy.checkout_id) frame.checkoutId = copy.checkout_id;
    if (typeof data.status === "string") copy.status = data.status;
    if (data.type === "checkout.resize") {
      // The page's own height: the frame fits its content unless the shop fixed a height.
      var height = Number(data.height);
      if (!frame.fixedHeight && isFinite(height) && height > 0) {
        frame.iframe.style.height = Math.min(Math.max(Math.ceil(height), 200), 20000) + "px";
      }
      return;
    }
    if (data.type === "checkout.redirect") {
      if (typeof data.url !== "string" || !/^https?:\/\//i.test(data.url)) return;
      copy.url = data.url;
      emit(copy);
      window.location.assign(data.url); // the provider's page refuses to be framed
      return;
    }
    emit(copy);
  });

  function makeFrame(url, title) {
    var iframe = document.createElement("iframe");
    iframe.src = url;
    iframe.title = title || "Checkout";
    iframe.setAttribute("allow", "clipboard-write");
    iframe.style.border = "0";
    iframe.style.width = "100%";
    iframe.style.display = "block";
    var frame = { iframe: iframe, origin: originOf(url), checkoutId: "" };
    frames.push(frame);
    return frame;
  }

  function forget(frame) {
    var iframe = frame.iframe;
    frames = frames.filter(function (f) { return f !== frame; });
    if (iframe.parentNode) iframe.parentNode.removeChild(iframe);
  }

  function mount(url, element, options) {
    var target = typeof element === "string" ? document.querySelector(element) : element;
    if (!target) throw new Error("Checkout.mount: no element " + element);
    var frame = makeFrame(url, options && options.title);
    var iframe = frame.iframe;
    // The page sends its height (checkout.resize) and the frame follows; {height} fixes it.
    frame.fixedHeight = Boolean(options && options.height);
    iframe.style.height = (options && options.height) || "640px";
    target.appendChild(iframe);
    return { iframe: iframe, unmount: function () { forget(frame); } };
  }

  function open(url, options) {
    var overlay = document.createElement("div");
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-modal", "true");
    overlay.style.cssText =
      "position:fixed;inset:0;z-index:2147483647;background:rgba(0,0,0,.5);" +
      "display:flex;align-items:center;justify-content:center";
    var box = document.createElement("div");
    box.style.cssText =
      "position:relative;background:#fff;width:min(480px,100%);height:min(720px,100%);" +
      "border-radius:8px;overflow:hidden";
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", (options && options.closeLabel) || "Close");
    close.textContent = "\u00d7";
    close.style.cssText =
      "position:absolute;top:4px;right:4px;z-index:1;border:0;background:transparent;" +
      "font-size:24px;line-height:1;cursor:pointer;padding:4px 10px";
    var frame = makeFrame(url, options && options.title);
    var iframe = frame.iframe;
    frame.fixedHeight = true; // the overlay's box scrolls its frame
    iframe.style.height = "100%";
    box.appendChild(close);
    box.appendChild(iframe);
    overlay.appendChild(box);
    document.body.appendChild(overlay);

    var closed = false;
    function onKey(e) { if (e.key === "Escape") shut(); }
    function shut() {
      if (closed) return;
      closed = true;
      document.removeEventListener("keydown", onKey);
      forget(frame);
      if (overlay.parentNode) overlay.parentNode.removeChild(overlay);
      emit({ type: "checkout.closed", checkout_id: frame.checkoutId });
    }
    close.addEventListener("click", shut);
    overlay.addEventListener("click", function (e) { if (e.target === overlay) shut(); });
    document.addEventListener("keydown", onKey);
    close.focus();
    return { iframe: iframe, close: shut };
  }

  function onEvent(callback) {
    listeners.push(callback);
    return function () {
      listeners = listeners.filter(function (l) { return l !== callback; });
    };
  }

  window.Checkout = { mount: mount, open: open, onEvent: onEvent };
})();
