/* The 待定位 page: choose an organization, then give its position by a click on the map, a
   place from search, or the phone's own position; the server checks and records each one. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("ht-placing-config").textContent);
  var T = cfg.text;
  var map = L.map("ht-placing-map", { minZoom: 5, maxZoom: 19, attributionControl: false });
  window.hongtuPlacingMap = map;
  L.control.attribution({ prefix: false }).addTo(map);
  var base = cfg.basemaps[0];
  (base.urls || []).forEach(function (u) {
    L.tileLayer(u, { subdomains: base.subdomains || "abc", attribution: base.attribution, maxZoom: 19 }).addTo(map);
  });
  var outlines = L.layerGroup().addTo(map);
  var marks = L.layerGroup().addTo(map);
  var selected = null;
  var el = function (id) { return document.getElementById(id); };

  if (cfg.extent) {
    map.fitBounds([[cfg.extent[1], cfg.extent[0]], [cfg.extent[3], cfg.extent[2]]]);
  } else {
    map.setView([25.04, 102.71], 11);
  }

  function say(text, ok) {
    var m = el("ht-message");
    m.textContent = text || "";
    m.className = ok ? "ok" : "";
  }

  // Communities and places drawn for orientation: where one is, is what staff recognise.
  function drawOutlines() {
    outlines.clearLayers();
    var b = map.getBounds();
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); }).join(",");
    var layers = map.getZoom() >= 14 ? ["community", "places"] : ["street", "community"];
    var stated = selected ? selected.dataset.area : "";
    if (stated.length === 9 && layers.indexOf("street") < 0) layers.push("street");
    layers.forEach(function (layer) {
      var url = cfg.data.replace("__layer__", layer) + "?bbox=" + bbox + "&zoom=" + map.getZoom() + "&crs=" + cfg.crs;
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (geo) {
        if (!geo) return;
        L.geoJSON(geo, {
          interactive: false,
          style: function (f) {
            // The area the ledger states: where the organization surely is.
            if (stated && f.properties.code === stated) {
              return { color: "#b71c1c", weight: 3, dashArray: "6 4", fillColor: "#b71c1c", fillOpacity: 0.06 };
            }
            return layer === "places"
              ? { color: "#6d4c41", weight: 1, fillOpacity: 0.08 }
              : { color: layer === "street" ? "#4527a0" : "#7e57c2", weight: layer === "street" ? 2 : 1, fill: false };
          },
          onEachFeature: function (f, l) {
            if (f.properties.code === stated || (layer === "places" && map.getZoom() >= 16)) {
              // A name is text from a ledger: given to Leaflet as a text node, never as HTML.
              var label = document.createElement("span");
              label.textContent = f.properties.name;
              l.bindTooltip(label, { permanent: true, direction: "center", className: "ht-area-label" });
            }
          },
          pointToLayer: function (_f, ll) { return L.circleMarker(ll, { radius: 3, color: "#6d4c41" }); },
        }).addTo(outlines);
      });
    });
  }
  map.on("moveend", drawOutlines);
  drawOutlines();

  function showHistory(org) {
    fetch(cfg.history.replace("__org__", encodeURIComponent(org)), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        var list = el("ht-history").querySelector("ol");
        list.textContent = "";
        (body.placements || []).forEach(function (p) {
          var li = document.createElement("li");
          // Stored in UTC; shown in the reader's own time.
          var when = new Date(p.at).toLocaleString(cfg.lang === "en" ? "en-GB" : "zh-CN", { dateStyle: "short", timeStyle: "short" });
          li.textContent = when + " · " + (p.username || "") + " · " + (T.sources[p.source] || p.source) +
            (p.place_name ? "「" + p.place_name + "」" : "") + " · " +
            (T.ways[p.from_located_by] || p.from_located_by) + " → " + p.to_lon.toFixed(5) + ", " + p.to_lat.toFixed(5);
          list.appendChild(li);
        });
        el("ht-history").querySelector("p").hidden = list.children.length > 0;
      });
  }

  function select(button) {
    document.querySelectorAll("#ht-to-place button").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    button.setAttribute("aria-pressed", "true");
    selected = button;
    propose(null);
    el("ht-place-hits").textContent = "";
    el("ht-place-q").value = "";
    marks.clearLayers();
    el("ht-selected").textContent = button.querySelector("b").textContent + " — " + T.click;
    el("ht-gps").disabled = false;
    el("ht-place-q").disabled = false;
    el("ht-save").disabled = true;
    say("");
    if (button.dataset.x) {
      var ll = [parseFloat(button.dataset.y), parseFloat(button.dataset.x)];
      var r = parseFloat(button.dataset.precision) || 0;
      // The stated area is outlined instead, when there is one: the circle would only blur it.
      if (r > 0 && !button.dataset.area) marks.addLayer(L.circle(ll, { radius: r, color: "#616161", dashArray: "4 4", fill: false, interactive: false }));
      marks.addLayer(L.circleMarker(ll, { radius: 6, color: "#616161", dashArray: "3 3", fillColor: "#fff", fillOpacity: 1 }));
      // Not animated: a position answered during an animation would be dropped by Leaflet.
      map.setView(ll, Math.max(map.getZoom(), r > 300 ? 15 : 17), { animate: false });
    } else if (cfg.extent) {
      map.fitBounds([[cfg.extent[1], cfg.extent[0]], [cfg.extent[3], cfg.extent[2]]]);
    }
    drawOutlines();
    showHistory(button.dataset.org);
    // On a phone the tools and the map are below the list: bring them up.
    if (window.matchMedia("(max-width: 640px)").matches) el("ht-selected").scrollIntoView({ block: "start" });
  }

  document.querySelectorAll("#ht-to-place button").forEach(function (b) {
    b.addEventListener("click", function () { select(b); });
  });

  // Every way of placing proposes a position first; only 保存 sends it, so that a slip of the
  // finger is seen on the map before it is saved.
  var pending = null;
  var pendingMarks = L.layerGroup().addTo(map);
  function propose(body, ll, radius, label) {
    pending = body;
    pendingMarks.clearLayers();
    el("ht-save").disabled = !body;
    el("ht-save").textContent = T.save + (label ? " · " + label : "");
    if (!body) return;
    if (radius) pendingMarks.addLayer(L.circle(ll, { radius: radius, color: "#1565c0", weight: 1, fillOpacity: 0.1, interactive: false }));
    pendingMarks.addLayer(L.marker(ll));
    map.setView(ll, Math.max(map.getZoom(), 17), { animate: false });
  }

  map.on("click", function (e) {
    if (!selected) { say(T.pick); return; }
    var ll = e.latlng;
    propose({ source: "map", lon: ll.lng, lat: ll.lat, crs: cfg.crs }, ll, 0, ll.lng.toFixed(5) + ", " + ll.lat.toFixed(5));
  });

  // The heading's counts follow each save: one fewer to place, one more placed by hand.
  function recount(was) {
    var counts = el("ht-counts");
    if (!was || !counts) return;
    counts.dataset[was] = Number(counts.dataset[was]) - 1;
    counts.dataset.manual = Number(counts.dataset.manual) + 1;
    var u = Number(counts.dataset.unplaced), a = Number(counts.dataset.approximate);
    // "singular|plural" for a count (see app/i18n.py).
    var forms = T.counts.split("|"), form = forms.length > 1 && u + a !== 1 ? forms[1] : forms[0];
    counts.textContent = form.replace("{n}", u + a).replace("{u}", u).replace("{a}", a) +
      T.manual_count.replace("{m}", counts.dataset.manual);
  }

  function send(body) {
    body.display_crs = cfg.crs;
    return fetch(cfg.place.replace("__org__", encodeURIComponent(selected.dataset.org)), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf },
      body: JSON.stringify(body),
    }).then(function (r) {
      return r.json().then(function (answer) {
        if (!r.ok) { say(answer[cfg.lang] || answer.error || T.failed); return; }
        var ll = [answer.display[1], answer.display[0]];
        propose(null);
        marks.clearLayers();
        marks.addLayer(L.circleMarker(ll, { radius: 7, color: "#fff", weight: 2, fillColor: "#b71c1c", fillOpacity: 1 }));
        map.setView(ll, Math.max(map.getZoom(), 17), { animate: false });
        selected.classList.add("done");
        var badge = selected.querySelector(".ht-by");
        recount(badge.classList.contains("unplaced") ? "unplaced" : badge.classList.contains("manual") ? null : "approximate");
        badge.className = "ht-by manual";
        badge.textContent = T.manual;
        selected.dataset.x = answer.display[0];
        selected.dataset.y = answer.display[1];
        selected.dataset.precision = "0";
        say(T.saved + " · " + answer.lon.toFixed(6) + ", " + answer.lat.toFixed(6), true);
        showHistory(selected.dataset.org);
      });
    }, function () { say(T.failed); });
  }

  el("ht-save").addEventListener("click", function () {
    if (selected && pending) send(pending);
  });

  el("ht-gps").addEventListener("click", function () {
    if (!navigator.geolocation) { say(T.nogps); return; }
    say(T.locating, true);
    navigator.geolocation.getCurrentPosition(function (p) {
      // A phone answers WGS-84, whatever the base map is drawn in: the server converts it for
      // the map; until then it is shown where the base map would put it unconverted.
      say("");
      var c = p.coords;
      propose(
        { source: "gps", lon: c.longitude, lat: c.latitude, crs: "wgs84", accuracy_m: c.accuracy },
        [c.latitude, c.longitude], c.accuracy, T.accuracy.replace("{n}", Math.round(c.accuracy))
      );
    }, function (err) {
      say(err.code === 1 ? T.denied : T.nogps);
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 0 });
  });

  var searching = null;
  el("ht-place-q").addEventListener("input", function () {
    clearTimeout(searching);
    var q = this.value.trim();
    searching = setTimeout(function () {
      var hits = el("ht-place-hits");
      hits.textContent = "";
      if (!q) return;
      fetch(cfg.places + "?q=" + encodeURIComponent(q) + "&crs=" + cfg.crs, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          if (!body.results.length) { say(T.none); return; }
          say("");
          body.results.forEach(function (p) {
            var li = document.createElement("li");
            var b = document.createElement("button");
            b.type = "button";
            b.textContent = p.name;
            b.title = p.address || "";
            b.addEventListener("click", function () {
              propose({ source: "place", place_id: p.place_id }, [p.lat, p.lon], 0, p.name);
            });
            li.appendChild(b);
            hits.appendChild(li);
          });
        });
    }, 300);
  });

  // Opened from an organization's correction page (?org=ID): that one is chosen already. Last,
  // because choosing one uses everything declared above.
  var asked = cfg.selected && document.querySelector('#ht-to-place button[data-org="' + CSS.escape(cfg.selected) + '"]');
  if (asked) select(asked);
}());
