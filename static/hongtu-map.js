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
    blank: { color: "#c62828", label: "空白" }
  };
  var ORG_TYPES = { enterprise: "企业", social_org: "社会组织" };
  var PLACE_KINDS = { park: "园区", business_circle: "商圈", market: "市场", building: "商务楼宇" };
  var CENTER_LEVELS = { street: "街道", community: "社区", building: "楼宇", park: "园区" };
  var STATION_KINDS = { delivery: "外卖", courier: "快递", ride_hailing: "网约车", mixed: "综合" };
  var AREA_STYLE = {
    district: { color: "#7b1fa2", weight: 2.5, fill: false },
    street: { color: "#5e35b1", weight: 1.5, dashArray: "6 4", fill: false },
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

  var renderers = {
    area: function (level) {
      return function (data, group) {
        L.geoJSON(data, {
          style: AREA_STYLE[level],
          onEachFeature: function (f, layer) {
            layer.bindTooltip(esc(f.properties.name) + " " + esc(f.properties.code), { sticky: true });
          }
        }).addTo(group);
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
      }).addTo(group);
    },
    centers: function (data, group, cfg) {
      L.geoJSON(data, {
        pointToLayer: function (f, latlng) {
          var street = f.properties.level === "street";
          // Service-radius rings only where they can be told apart.
          if (group._map && group._map.getZoom() >= 14) {
            L.circle(latlng, { radius: cfg.radius, color: "#1565c0", weight: 1, fillOpacity: 0.04, interactive: false }).addTo(group);
          }
          return L.circleMarker(latlng, { radius: street ? 7 : 5, color: "#1565c0", weight: 2, fillColor: "#fff", fillOpacity: 1 });
        },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          layer.bindPopup("<b>" + esc(p.name) + "</b>" + table([
            ["级别", CENTER_LEVELS[p.level] || p.level], ["承载能力", p.capacity], ["服务半径", cfg.radius + " 米"]
          ]));
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

  function renderOrgs(data, groups) {
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
      return L.circleMarker([c[1], c[0]], { radius: 6, color: "#fff", weight: 1, fillColor: s.color, fillOpacity: 0.95 })
        .bindPopup(orgPopup(f.properties));
    });
    groups.orgs.addLayers(markers);
  }

  function init(map, control, groups, cfg) {
    L.control.scale({ imperial: false }).addTo(map);
    var base = {};
    cfg.basemaps.forEach(function (b, i) {
      var layer = L.layerGroup(b.urls.map(function (u) {
        return L.tileLayer(u, { subdomains: b.subdomains || "abc", attribution: b.attribution, maxZoom: 19 });
      }));
      base[b.id] = layer;
      control.addBaseLayer(layer, b.name);
      if (i === 0) layer.addTo(map);
    });

    var pending = {};
    function load(name, render) {
      var group = groups[name === "orgs" ? "orgs_clusters" : name];
      var visible = map.hasLayer(group) || (name === "orgs" && map.hasLayer(groups.orgs));
      var min = cfg.minZoom[name] || 0;
      if (name === "orgs") groups.orgs.clearLayers();
      group.clearLayers();
      if (!visible || map.getZoom() < min) return;
      if (pending[name]) pending[name].abort();
      var ctrl = new AbortController();
      pending[name] = ctrl;
      var b = map.getBounds();
      var url = cfg.data.replace("__layer__", name) + "?bbox=" +
        [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); }).join(",") +
        "&zoom=" + map.getZoom();
      fetch(url, { signal: ctrl.signal })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) { render(data, group, cfg); })
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
      orgs: function (data) { renderOrgs(data, groups); }
    };
    function refresh() {
      Object.keys(layers).forEach(function (name) { load(name, layers[name]); });
    }
    map.on("moveend", refresh);
    map.on("overlayadd overlayremove", refresh);
    refresh();
    // Handles for embedding pages and browser tests.
    window.hongtuMap = map;
    window.hongtuGroups = groups;
  }

  window.Hongtu = { init: init, esc: esc };
})();
