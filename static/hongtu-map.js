/* Hongtu map client: fills folium's layer groups from /map/data/<layer>?bbox&zoom.
 *
 * Every text value from the server is escaped before it reaches HTML (popups, tooltips):
 * organization names are untrusted input.
 */
(function () {
  "use strict";

  var STATUS = {
    org: { color: "#2e7d32", label: "组织覆盖" },
    work: { color: "#f9a825", label: "工作覆盖" },
    blank: { color: "#c62828", label: "空白" },
    out: { color: "#9e9e9e", label: "不在统计范围" }
  };
  var RUN_STATUS = { own: "单独组建", joint: "联合组建", area: "区域组建", industry: "行业组建", work: "工作覆盖", blank: "空白" };
  var COVERAGE_KINDS = { own: "单独组建", joint: "联合组建", area: "区域组建", industry: "行业组建" };
  var ORG_TYPES = { enterprise: "企业", social_org: "社会组织" };
  var PLACE_KINDS = { park: "园区", business_circle: "商圈", market: "市场", building: "商务楼宇" };
  var CENTER_LEVELS = { street: "街道", community: "社区", building: "楼宇", park: "园区" };
  var STATION_KINDS = { delivery: "外卖", courier: "快递", ride_hailing: "网约车", mixed: "综合" };
  var AREA_STYLE = {
    // On a canvas a polygon answers the pointer inside it even unfilled: outlines stay inert.
    district: { color: "#7b1fa2", weight: 2.5, fill: false, interactive: false },
    street: { color: "#5e35b1", weight: 1.5, dashArray: "6 4", fill: false, interactive: false },
    community: { color: "#3949ab", weight: 1, fill: false, opacity: 0.7 },
    grid: { color: "#90a4ae", weight: 0.8, fill: false, dashArray: "2 3" }
  };

  function esc(value) {
    if (value === null || value === undefined) return "";
    return String(value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function table(rows) {
    var html = '<table class="ht-popup">';
    rows.forEach(function (r) {
      html += "<tr><th>" + esc(r[0]) + "</th><td>" + esc(r[1]) + "</td></tr>";
    });
    return html + "</table>";
  }

  function orgPopup(p) {
    return "<b>" + esc(p.name) + "</b>" + table([
      ["类型", ORG_TYPES[p.org_type] || p.org_type],
      ["行业", p.industry],
      ["从业人员", p.employees],
      ["正式党员", p.party_members],
      ["覆盖状态", (STATUS[p.status] || {}).label],
      ["地址", p.address],
      ["编号", p.org_id]
    ]);
  }

  // The full card: party organizations, instructor, place, grid, paired center, navigation.
  function orgCard(c) {
    var party = (c.party_orgs || []).map(function (p) {
      return p.name + "（" + (COVERAGE_KINDS[p.coverage_kind] || p.coverage_kind) + "）";
    }).join("；");
    var rows = [
      ["类型", ORG_TYPES[c.org_type] || c.org_type],
      ["行业", c.industry],
      ["统一社会信用代码", c.credit_code],
      ["从业人员", c.employees],
      ["正式党员", c.party_members],
      ["党组织", party || "无"],
      ["党建指导员", c.instructor ? "已选派" : "未选派"],
      ["覆盖状态", c.run_status ? (RUN_STATUS[c.run_status] || c.run_status) + (c.in_scope ? "" : "（不在统计范围）") : ""],
      ["所在场所", c.place_name],
      ["所在社区", c.community_name],
      ["网格编码", c.grid_code],
      ["结对阵地", c.center_name ? c.center_name + "（" + Math.round(c.pair_distance_m) + " 米）" : ""],
      ["地址", c.address],
      ["编号", c.org_id]
    ].filter(function (r) { return r[1] !== null && r[1] !== undefined && r[1] !== ""; });
    var nav = c.navigation || {};
    return "<b>" + esc(c.name) + "</b>" + table(rows) +
      '<div class="ht-nav-links"><a target="_blank" rel="noopener" href="' + esc(nav.amap) + '">高德导航</a> · ' +
      '<a target="_blank" rel="noopener" href="' + esc(nav.baidu) + '">百度导航</a></div>';
  }

  function bindCard(marker, props, cfg) {
    marker.bindPopup(orgPopup(props), { maxWidth: 360 });
    marker.on("popupopen", function (e) {
      fetch(cfg.card.replace("__org__", encodeURIComponent(props.org_id)))
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (card) { if (card) e.popup.setContent(orgCard(card)); });
    });
    return marker;
  }

  function rateColor(rate) {
    if (rate === null || rate === undefined) return "#bdbdbd";
    return rate >= 0.9 ? "#1b5e20" : rate >= 0.75 ? "#66bb6a" : rate >= 0.6 ? "#fdd835" : rate >= 0.4 ? "#fb8c00" : "#c62828";
  }

  var renderers = {
    area: function (level) {
      return function (data, group, cfg) {
        L.geoJSON(data, {
          style: function (f) {
            var style = L.extend({}, AREA_STYLE[level]);
            // With an analysis run, communities and grids are filled by their 两个覆盖率.
            if ((level === "community" || level === "grid") && f.properties.in_scope) {
              style.fill = true; style.fillColor = rateColor(f.properties.both_rate); style.fillOpacity = 0.25;
            }
            return style;
          },
          onEachFeature: function (f, layer) {
            var p = f.properties, rate = p.both_rate === null || p.both_rate === undefined ? "" :
              " · 两个覆盖率 " + Math.round(p.both_rate * 100) + "%";
            layer.bindTooltip(esc(p.name) + " " + esc(p.code) + esc(rate), { sticky: true });
          }
        }).addTo(group).bringToBack();
      };
    },
    run: function (style, label) {
      return function (data, group) {
        L.geoJSON(data, {
          style: style,
          pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 8, color: "#6a1b9a", weight: 3 }); },
          onEachFeature: function (f, layer) {
            layer.bindTooltip(esc(label) + " #" + esc(f.properties.rank) + "：" + esc(f.properties.count) + " 个组织");
          }
        }).addTo(group).bringToBack();
      };
    },
    places: function (data, group) {
      L.geoJSON(data, {
        style: { color: "#ef6c00", weight: 1.5, fillOpacity: 0.12 },
        pointToLayer: function (f, latlng) {
          return L.circleMarker(latlng, { radius: 5, color: "#ef6c00", weight: 2, fillOpacity: 0.3 });
        },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          layer.bindPopup("<b>" + esc(p.name) + "</b>" + table([["类别", PLACE_KINDS[p.kind] || p.kind], ["编号", p.place_id]]));
        }
      }).addTo(group).bringToBack();
    },
    centers: function (data, group, cfg) {
      L.geoJSON(data, {
        pointToLayer: function (f, latlng) {
          var street = f.properties.level === "street";
          // Service-radius rings only where they can be told apart.
          if (group._map && group._map.getZoom() >= 14) {
            L.circle(latlng, { radius: cfg.radius, color: "#1565c0", weight: 1, fillOpacity: 0.04, interactive: false }).addTo(group);
          }
          return L.circleMarker(latlng, {
            radius: street ? 7 : 5, color: "#1565c0", weight: 2, fillColor: "#fff", fillOpacity: 1, bubblingMouseEvents: false
          });
        },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          var rows = [["级别", CENTER_LEVELS[p.level] || p.level], ["承载能力", p.capacity], ["服务半径", cfg.radius + " 米"]];
          layer.bindPopup("<b>" + esc(p.name) + "</b>" + table(rows));
          layer.on("popupopen", function (e) {
            fetch(cfg.centerCard.replace("__center__", encodeURIComponent(p.center_id)))
              .then(function (r) { return r.ok ? r.json() : null; })
              .then(function (card) {
                if (!card) return;
                e.popup.setContent("<b>" + esc(card.name) + "</b>" + table(rows.concat([
                  ["所在区划", card.area_name],
                  ["结对组织", card.run_id ? card.paired + " 个（共驻共建）" : "尚无分析"]
                ])));
              });
          });
        }
      }).addTo(group);
    },
    stations: function (data, group) {
      L.geoJSON(data, {
        pointToLayer: function (f, latlng) {
          return L.circleMarker(latlng, { radius: 6, color: "#00838f", weight: 2, fillColor: "#4dd0e1", fillOpacity: 0.9 });
        },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          layer.bindPopup("<b>" + esc(p.name) + "</b>" + table([["类型", STATION_KINDS[p.kind] || p.kind], ["设施", p.facilities]]));
        }
      }).addTo(group);
    }
  };

  function renderOrgs(data, groups, cfg) {
    var counter = document.getElementById("ht-visible");
    if (counter) counter.textContent = data.total;
    if (data.mode === "clusters") {
      data.features.forEach(function (f) {
        var p = f.properties, n = Number(p.n), size = Math.round(18 + 7 * Math.log10(n + 1));
        var c = f.geometry.coordinates;
        var icon = L.divIcon({
          className: "ht-cluster" + (p.blank * 2 < n ? " covered" : ""),
          html: '<span style="line-height:' + size + 'px">' + n + "</span>",
          iconSize: [size, size]
        });
        L.marker([c[1], c[0]], { icon: icon, title: n + " 个组织，空白 " + p.blank })
          .on("click", function (e) { e.target._map.setView(e.latlng, e.target._map.getZoom() + 2); })
          .addTo(groups.orgs_clusters);
      });
      return;
    }
    var markers = data.features.map(function (f) {
      var c = f.geometry.coordinates, s = STATUS[f.properties.status] || STATUS.blank;
      var marker = L.circleMarker([c[1], c[0]], {
        radius: 6, color: "#fff", weight: 1, fillColor: s.color, fillOpacity: 0.95, bubblingMouseEvents: false
      });
      return bindCard(marker, f.properties, cfg);
    });
    groups.orgs.addLayers(markers);
  }

  function init(map, control, groups, cfg) {
    L.control.scale({ imperial: false }).addTo(map);
    var base = {};
    // Overlays are drawn in the coordinates of the base map: GCJ-02 under AMap, else WGS-84.
    cfg.displayCrs = "wgs84";
    cfg.basemaps.forEach(function (b, i) {
      var layer = L.layerGroup(b.urls.map(function (u) {
        return L.tileLayer(u, { subdomains: b.subdomains || "abc", attribution: b.attribution, maxZoom: 19 });
      }));
      layer.hongtuCrs = b.crs || "wgs84";
      base[b.id] = layer;
      control.addBaseLayer(layer, b.name);
      if (i === 0) { layer.addTo(map); cfg.displayCrs = layer.hongtuCrs; }
    });
    map.on("baselayerchange", function (e) {
      var crs = e.layer.hongtuCrs || "wgs84";
      if (crs !== cfg.displayCrs) { cfg.displayCrs = crs; refresh(); }
    });

    var pending = {}, reading = false;
    // While a card is open, the map may pan to fit it; reloading would close it under the reader.
    map.on("popupopen", function (e) { reading = groups.orgs.hasLayer(e.popup._source); });
    map.on("popupclose", function () { reading = false; });
    function load(name, render) {
      if (name === "orgs" && reading) return;
      var group = groups[name === "orgs" ? "orgs_clusters" : name];
      var visible = map.hasLayer(group) || (name === "orgs" && map.hasLayer(groups.orgs));
      var min = cfg.minZoom[name] || 0;
      function clear() {
        if (name === "orgs") groups.orgs.clearLayers();
        group.clearLayers();
      }
      if (!visible || map.getZoom() < min) { clear(); return; }
      if (pending[name]) pending[name].abort();
      var ctrl = new AbortController();
      pending[name] = ctrl;
      var b = map.getBounds();
      var url = cfg.data.replace("__layer__", name) + "?bbox=" +
        [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); }).join(",") +
        "&zoom=" + map.getZoom() + crsQuery(cfg) + (name === "orgs" ? filterQuery() : "");
      fetch(url, { signal: ctrl.signal })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        // Swap only when the new data is here: no flicker, and what is shown stays clickable.
        .then(function (data) { clear(); render(data, group, cfg); })
        .catch(function (e) { if (e.name !== "AbortError" && window.console) console.warn("hongtu", name, e); });
    }

    var layers = {
      district: renderers.area("district"),
      street: renderers.area("street"),
      community: renderers.area("community"),
      grid: renderers.area("grid"),
      places: renderers.places,
      centers: renderers.centers,
      stations: renderers.stations,
      hotspots: renderers.run({ color: "#b71c1c", weight: 2, fillOpacity: 0.25 }, "空白热点"),
      gaps: renderers.run({ color: "#0d47a1", weight: 1, dashArray: "4 3", fillOpacity: 0.15 }, "服务盲区"),
      gaps500: renderers.run({ color: "#1976d2", weight: 1, dashArray: "2 3", fillOpacity: 0.1 }, "500 米盲区"),
      sites: renderers.run({}, "建议新建阵地"),
      orgs: function (data) { renderOrgs(data, groups, cfg); }
    };
    function refresh() {
      Object.keys(layers).forEach(function (name) { load(name, layers[name]); });
    }
    map.on("moveend", refresh);
    map.on("overlayadd overlayremove", refresh);
    document.querySelectorAll(".ht-filter").forEach(function (el) {
      el.addEventListener("change", function () { load("orgs", layers.orgs); });
    });
    setUpSearch(map, cfg);
    // Nearby: a click on the map lists what lies within the service radius, nearest first.
    map.on("click", function (e) {
      var url = cfg.nearby + "?lon=" + e.latlng.lng.toFixed(6) + "&lat=" + e.latlng.lat.toFixed(6) + "&r=" + cfg.radius +
        crsQuery(cfg);
      fetch(url).then(function (r) { return r.json(); }).then(function (data) {
        var list = function (items, label) {
          return "<b>" + esc(label) + "（" + items.length + "）</b><ol class='ht-nearby'>" + items.slice(0, 10).map(function (it) {
            return "<li>" + esc(it.name) + " · " + esc(Math.round(it.distance_m)) + " 米</li>";
          }).join("") + "</ol>";
        };
        L.popup({ maxWidth: 320 }).setLatLng(e.latlng).setContent(
          "<div class='ht-nearby-card'>" + esc(cfg.radius) + " 米内<br>" + list(data.centers, "党群服务中心") +
          list(data.organizations, "两新组织") + "</div>"
        ).openOn(map);
      });
    });
    refresh();
    // Handles for embedding pages and browser tests.
    window.hongtuMap = map;
    window.hongtuGroups = groups;
  }

  function crsQuery(cfg) {
    return cfg.displayCrs === "wgs84" ? "" : "&crs=" + cfg.displayCrs;
  }

  function filterQuery() {
    var q = "";
    document.querySelectorAll(".ht-filter").forEach(function (el) {
      if (el.value) q += "&" + encodeURIComponent(el.name) + "=" + encodeURIComponent(el.value);
    });
    return q;
  }

  // Search by name, address or credit code: a list of hits; choosing one zooms there and rings it.
  function setUpSearch(map, cfg) {
    var form = document.getElementById("ht-search");
    if (!form) return;
    var list = document.getElementById("ht-search-results"), ring = null;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var q = form.querySelector("input").value.trim();
      if (!q) return;
      fetch(cfg.search + "?q=" + encodeURIComponent(q) + crsQuery(cfg)).then(function (r) { return r.json(); }).then(function (data) {
        list.innerHTML = "";
        if (!data.results || !data.results.length) { list.innerHTML = "<li>未找到</li>"; return; }
        data.results.forEach(function (hit) {
          var li = document.createElement("li");
          li.textContent = hit.name + (hit.address ? "（" + hit.address + "）" : "");
          li.addEventListener("click", function () {
            map.setView([hit.lat, hit.lon], 17);
            if (ring) map.removeLayer(ring);
            ring = L.circleMarker([hit.lat, hit.lon], { radius: 14, color: "#ff6f00", weight: 3, fill: false, interactive: false }).addTo(map);
            window.hongtuHighlight = hit.org_id;
            list.innerHTML = "";
          });
          list.appendChild(li);
        });
      });
    });
  }

  window.Hongtu = { init: init, esc: esc };
})();
