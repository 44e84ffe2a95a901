/* Hongtu map client: fills folium's layer groups from /map/data/<layer>?bbox&zoom.
 *
 * Every text value from the server is escaped before it reaches HTML (popups, tooltips):
 * organization names are untrusted input.
 */
(function () {
  "use strict";

  // The coverage statuses, their names and colours, from geo/vocabulary.py (through the page's
  // config): filled in by init, in the order a cluster's ring draws them.
  var STATUS = {}, STATUS_ORDER = [];
  // Each layer's colour, from its symbol in the layer catalogue (app/layers.py).
  var COLOR = {};
  // The domain's words (value → Chinese name), from geo/vocabulary.py through the page's config.
  var RUN_STATUS = {}, COVERAGE_KINDS = {}, ORG_TYPES = {}, PLACE_KINDS = {}, CENTER_LEVELS = {}, STATION_KINDS = {};

  // The page's message catalog (Chinese source → current language); Chinese when absent.
  var I18N = window.HONGTU_I18N || {};
  function t(message, values) {
    var text = I18N[message] || message;
    // "singular|plural" for a count {n} (see app/i18n.py).
    if (values && values.n !== undefined && text.indexOf("{n}") >= 0 && text.indexOf("|") >= 0) {
      text = text.split("|")[Number(values.n) === 1 ? 0 : 1];
    }
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(values[k]); });
    return text;
  }
  function label(dict, key) { return dict[key] ? t(dict[key]) : key; }

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
      [t("类型"), label(ORG_TYPES, p.org_type)],
      [t("行业"), t(p.industry || "")],
      [t("从业人员"), p.employees],
      [t("正式党员"), p.party_members],
      [t("覆盖状态"), STATUS[p.status] ? t(STATUS[p.status].label) : ""],
      [t("地址"), p.address],
      [t("编号"), p.org_id]
    ]);
  }

  // The full card: party organizations, instructor, place, grid, paired center, navigation.
  function orgCard(c, cfg) {
    var tiers = cfg.pairTiers || [];
    var party = (c.party_orgs || []).map(function (p) {
      return p.name + " (" + label(COVERAGE_KINDS, p.coverage_kind) + ")";
    }).join("; ");
    var rows = [
      [t("类型"), label(ORG_TYPES, c.org_type)],
      [t("行业"), t(c.industry || "")],
      [t("统一社会信用代码"), c.credit_code],
      [t("从业人员"), c.employees],
      [t("正式党员"), c.party_members],
      [t("党组织"), party || t("无")],
      [t("党建指导员"), (c.instructors || []).length ? c.instructors.map(function (p) {
        return p.name + (p.unit || p.phone ? "（" + [p.unit, p.phone].filter(Boolean).join("，") + "）" : "");
      }).join("; ") : (c.instructor ? t("已选派") : t("未选派"))],
      [t("最近走访"), c.last_visit ? c.last_visit : (c.instructor ? t("尚无走访记录") : "")],
      [t("覆盖状态"), c.run_status ? label(RUN_STATUS, c.run_status) + (c.in_scope ? "" : " · " + t("不在统计范围")) +
        (c.results_stale ? " · " + t("待刷新") : "") : ""],
      [t("所在场所"), c.place_name],
      [t("所在社区"), c.community_name],
      [t("网格编码"), c.grid_code],
      [t("结对阵地"), c.center_name ? c.center_name + " · " + t("{n} 米", { n: Math.round(c.pair_distance_m) }) +
        (tiers[c.pair_tier] ? " · " + t(tiers[c.pair_tier]) : "") : ""],
      [t("步行到最近阵地"), c.walk_m !== null && c.walk_m !== undefined ? (c.walk_center_name || "") + " · " +
        t("步行 {n} 米，约 {m} 分钟（直线 {d} 米）", {
          n: Math.round(c.walk_m), m: Math.round(c.walk_m / (cfg.walkSpeed || 1.2) / 60), d: Math.round(c.reach_distance_m)
        }) : ""],
      [t("地址"), c.address],
      [t("编号"), c.org_id]
    ].filter(function (r) { return r[1] !== null && r[1] !== undefined && r[1] !== ""; });
    var nav = c.navigation || {};
    var last = c.last_change;
    // A correction after the run: the status above may not reflect it yet.
    var changed = last ? '<p class="ht-card-changed">' + esc(t("最近更正 {at}（{user}），共 {n} 条记录", {
      at: new Date(last.at).toLocaleString(), user: last.username || "", n: last.n })) + "</p>" : "";
    var correct = c.correct ? ' · <a href="' + esc(c.correct) + '">' + esc(t("更正信息")) + "</a>" : "";
    var unvisited = c.unvisited ? '<p class="ht-card-changed ht-warn">' + esc(t("挂名未走访")) + "</p>" : "";
    var stale = c.results_stale ? '<p class="ht-card-changed">' + esc(t("数据已更新，分析结果待刷新")) + "</p>" : "";
    var visit = c.visit ? ' · <a href="' + esc(c.visit) + '">' + esc(t("记录走访")) + "</a>" : "";
    return "<b>" + esc(c.name) + "</b>" + table(rows) + unvisited + stale + changed +
      '<div class="ht-nav-links"><a target="_blank" rel="noopener" href="' + esc(nav.amap) + '">' + esc(t("高德导航")) + '</a> · ' +
      '<a target="_blank" rel="noopener" href="' + esc(nav.baidu) + '">' + esc(t("百度导航")) + "</a>" + correct + visit + "</div>";
  }

  function bindCard(marker, props, cfg) {
    marker.bindPopup(orgPopup(props), { maxWidth: 360 });
    // A standalone file has no server to ask for the full card; a published link may not ask.
    if (cfg.inline || cfg.token) return marker;
    marker.on("popupopen", function (e) {
      fetch(cfg.card.replace("__org__", encodeURIComponent(props.org_id)))
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (card) { if (card) e.popup.setContent(orgCard(card, cfg)); });
    });
    return marker;
  }

  // Names that would overlap are not written: a coarser level's name wins (district, then
  // street, then community, then grid), so what stays is what the reader orients by.
  var LABEL_RANK = ["district", "street", "community", "grid"];
  var decluttering = null;
  function declutterSoon() {
    clearTimeout(decluttering);
    decluttering = setTimeout(declutter, 0);
  }
  function declutter() {
    var labels = [];
    LABEL_RANK.forEach(function (level) {
      document.querySelectorAll(".ht-label-" + level).forEach(function (el) {
        el.style.visibility = "";
        labels.push(el);
      });
    });
    var boxes = labels.map(function (el) { return el.getBoundingClientRect(); }), kept = [];
    labels.forEach(function (el, i) {
      var b = boxes[i], clash = kept.some(function (k) {
        return b.left < k.right && k.left < b.right && b.top < k.bottom && k.top < b.bottom;
      });
      if (clash) el.style.visibility = "hidden"; else kept.push(b);
    });
  }

  // Zoom range in which each level's names are written on the map.
  var LABEL_ZOOM = { district: [0, 11], street: [12, 13], community: [14, 15], grid: [16, 22] };

  function pct(rate) { return rate === null || rate === undefined ? "–" : Math.round(rate * 1000) / 10 + "%"; }

  // An area's card: counts and rates of the latest run, and a link to its page.
  // What lies within the service radius of a clicked point, nearest first, below ``header``
  // (an area's card when the click fell on its polygon). Not on exports and embeds.
  function nearbyAllowed(cfg) { return !cfg.inline && !cfg.token; }

  function showNearby(map, cfg, latlng, header) {
    var url = cfg.nearby + "?lon=" + latlng.lng.toFixed(6) + "&lat=" + latlng.lat.toFixed(6) + "&r=" + cfg.radius +
      crsQuery(cfg);
    fetch(url).then(function (r) { return r.json(); }).then(function (data) {
      var list = function (items, name) {
        return "<b>" + esc(t(name)) + " (" + items.length + ")</b><ol class='ht-nearby'>" + items.slice(0, 10).map(function (it) {
          return "<li>" + esc(it.name) + " · " + esc(t("{n} 米", { n: Math.round(it.distance_m) })) + "</li>";
        }).join("") + "</ol>";
      };
      // Where the click fell, district → grid, each a link to its page.
      var trail = (data.areas || []).map(function (a) {
        return '<a href="' + esc(cfg.areaPage.replace("__code__", encodeURIComponent(a.code))) + '">' + esc(a.name) + "</a>";
      }).join(" › ");
      L.popup({ maxWidth: 320 }).setLatLng(latlng).setContent(
        "<div class='ht-nearby-card'>" + header + (trail && !header ? "<div class='ht-trail'>" + trail + "</div>" : "") +
        (header ? "<hr>" : "") + esc(t("{n} 米内", { n: cfg.radius })) + "<br>" + list(data.centers || [], "党群服务中心") +
        list(data.organizations || [], "两新组织") + "</div>"
      ).openOn(map);
    });
  }

  function areaCard(p, cfg) {
    var rows = [[t("编码"), p.code]];
    if (p.orgs !== undefined && p.orgs !== null) {
      rows = rows.concat([
        [t("两新组织"), p.orgs], [t("在统计范围"), p.in_scope], [t("空白"), p.blank],
        [t("组织覆盖率"), pct(p.org_coverage_rate)], [t("两个覆盖率"), pct(p.both_rate)]
      ]);
    }
    return "<b>" + esc(p.name) + "</b>" + table(rows) +
      '<a class="ht-area-link" href="' + esc(cfg.areaPage.replace("__code__", encodeURIComponent(p.code))) + '">' + esc(t("查看区域详情")) + " ›</a>";
  }

  // The level the choropleth shades: chosen in the panel, or by zoom ("auto") — streets for the
  // city, communities for a street, grids (when shown) for a community.
  function choroplethLevel(map, cfg) {
    var chosen = (document.querySelector("select[name=choropleth]") || {}).value || "auto";
    if (chosen !== "auto" || !map) return chosen;
    var zoom = map.getZoom();
    if (zoom >= 15 && cfg.gridShown) return "grid";
    return zoom >= 12 ? "community" : "street";
  }

  function rateColor(rate) {
    if (rate === null || rate === undefined) return "#bdbdbd";
    return rate >= 0.9 ? "#1b5e20" : rate >= 0.75 ? "#66bb6a" : rate >= 0.6 ? "#fdd835" : rate >= 0.4 ? "#fb8c00" : "#c62828";
  }

  var renderers = {
    area: function (level, areaStyle) {
      return function (data, group, cfg) {
        var zoom = group._map ? group._map.getZoom() : 0, labelled = zoom >= LABEL_ZOOM[level][0] && zoom <= LABEL_ZOOM[level][1];
        L.geoJSON(data, {
          style: function (f) {
            var style = L.extend({}, areaStyle);
            // With an analysis run, one level at a time is filled by its 两个覆盖率.
            if (level === choroplethLevel(group._map, cfg) && f.properties.in_scope) {
              style.fill = true; style.fillColor = rateColor(f.properties.both_rate); style.fillOpacity = 0.25;
            }
            return style;
          },
          onEachFeature: function (f, layer) {
            var p = f.properties;
            // On an area's map, only the names of the area, its parts and its parents.
            var related = !cfg.area || !cfg.area.code || p.code.indexOf(cfg.area.code) === 0 || cfg.area.code.indexOf(p.code) === 0;
            if (labelled && p.label && related) {
              L.tooltip({ permanent: true, direction: "center", className: "ht-area-label ht-label-" + level, interactive: false })
                .setLatLng([p.label[1], p.label[0]]).setContent(esc(p.name)).addTo(group);
            }
            if (areaStyle.interactive === false) return;
            var rate = p.both_rate === null || p.both_rate === undefined ? "" : " · " + t("两个覆盖率") + " " + pct(p.both_rate);
            layer.bindTooltip(esc(p.name) + " " + esc(p.code) + esc(rate), { sticky: true });
            // The polygon takes the click from the map: its card also lists what lies nearby.
            if (nearbyAllowed(cfg)) layer.on("click", function (e) {
              // The map hears the same click on a canvas: it must not open a second list.
              if (e.originalEvent) e.originalEvent.hongtuNearby = true;
              showNearby(e.target._map, cfg, e.latlng, areaCard(p, cfg));
            });
            else layer.bindPopup(areaCard(p, cfg));
          }
        }).addTo(group).bringToBack();
        declutterSoon();
      };
    },
    pairings: function (data, group) {
      L.geoJSON(data, {
        style: { color: COLOR.pairings, weight: 1.2, opacity: 0.7, dashArray: "3 3" },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          layer.bindTooltip(esc(p.name) + " → " + esc(p.center_name) + " · " + esc(t("{n} 米", { n: Math.round(p.pair_distance_m) })));
        }
      }).addTo(group);
    },
    branches: function (data, group) {
      // Each proposal: a star from its centre to its member units, and a badge at the centre.
      data.features.forEach(function (f) {
        var p = f.properties, pts = f.geometry.coordinates.map(function (c) { return [c[1], c[0]]; });
        var centre = [
          pts.reduce(function (a, q) { return a + q[0]; }, 0) / pts.length,
          pts.reduce(function (a, q) { return a + q[1]; }, 0) / pts.length
        ];
        pts.forEach(function (q) { L.polyline([centre, q], { color: COLOR.branches, weight: 2, opacity: 0.8, interactive: false }).addTo(group); });
        L.circleMarker(centre, { radius: 7, color: COLOR.branches, weight: 2, fillColor: "#e1bee7", fillOpacity: 1, bubblingMouseEvents: false })
          .bindPopup("<b>" + esc(t("联合党支部建议")) + " #" + esc(p.proposal_id) + "</b>" + table([
            [t("单位数"), p.units], [t("正式党员"), p.party_members], [t("最远间距"), t("{n} 米", { n: Math.round(p.spread_m) })]
          ]) + "<ol class='ht-nearby'>" + (p.names || []).map(function (n) { return "<li>" + esc(n) + "</li>"; }).join("") + "</ol>")
          .addTo(group);
      });
    },
    // Reached by a ruler but not on foot: a ring in the layer's colour, both distances on hover.
    line_only: function (data, group, cfg) {
      var spec = (cfg.layers || []).filter(function (l) { return l.key === "line_only"; })[0] || {};
      var color = (spec.symbol || {}).color || "#ad1457";
      L.geoJSON(data, {
        pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 7, color: color, weight: 2, fill: false }); },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          layer.bindTooltip(esc(p.name) + " · " + esc(t("直线 {d} 米，步行 {n}", {
            d: Math.round(p.reach_distance_m), n: p.walk_m === null ? t("不可达") : t("{n} 米", { n: Math.round(p.walk_m) })
          })));
        }
      }).addTo(group);
    },
    // Lines drawn in their catalogue style, named on hover (the walking network).
    lines: function (style) {
      return function (data, group) {
        L.geoJSON(data, {
          style: style,
          onEachFeature: function (f, layer) { if (f.properties.name) layer.bindTooltip(esc(f.properties.name), { sticky: true }); }
        }).addTo(group).bringToBack();
      };
    },
    run: function (style, name) {
      return function (data, group) {
        L.geoJSON(data, {
          style: style,
          pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 8, color: COLOR.sites, weight: 3 }); },
          onEachFeature: function (f, layer) {
            layer.bindTooltip(esc(t(name)) + " #" + esc(f.properties.rank) + " · " + esc(t("{n} 个组织", { n: f.properties.count })));
          }
        }).addTo(group).bringToBack();
      };
    },
    places: function (data, group) {
      L.geoJSON(data, {
        style: { color: COLOR.places, weight: 1.5, fillOpacity: 0.12 },
        pointToLayer: function (f, latlng) {
          return L.circleMarker(latlng, { radius: 5, color: COLOR.places, weight: 2, fillOpacity: 0.3 });
        },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          layer.bindPopup("<b>" + esc(p.name) + "</b>" + table([[t("类别"), label(PLACE_KINDS, p.kind)], [t("编号"), p.place_id]]));
        }
      }).addTo(group).bringToBack();
    },
    centers: function (data, group, cfg) {
      L.geoJSON(data, {
        pointToLayer: function (f, latlng) {
          var street = f.properties.level === "street";
          // Service-radius rings only where they can be told apart, as outlines (a tint would
          // cover everything where centers are dense), and in an export only when asked for.
          var rings = cfg.inline ? cfg.rings : group._map && group._map.getZoom() >= 15;
          if (rings) {
            L.circle(latlng, { radius: cfg.radius, color: COLOR.centers, weight: 1, opacity: 0.6, dashArray: "4 4", fill: false, interactive: false }).addTo(group);
          }
          // Below street zoom a community's center is a small mark, so a district's hundreds
          // of them do not blanket its organizations.
          var small = group._map && group._map.getZoom() < 13 && !street;
          return L.circleMarker(latlng, {
            radius: street ? 6 : small ? 2.5 : 5, color: COLOR.centers, weight: small ? 1 : 2, fillColor: "#fff", fillOpacity: 1,
            bubblingMouseEvents: false
          });
        },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          var rows = [[t("级别"), label(CENTER_LEVELS, p.level)], [t("承载能力"), p.capacity], [t("服务半径"), t("{n} 米", { n: cfg.radius })]];
          layer.bindPopup("<b>" + esc(p.name) + "</b>" + table(rows));
          if (!cfg.inline && !cfg.token) layer.on("popupopen", function (e) {
            fetch(cfg.centerCard.replace("__center__", encodeURIComponent(p.center_id)))
              .then(function (r) { return r.ok ? r.json() : null; })
              .then(function (card) {
                if (!card) return;
                e.popup.setContent("<b>" + esc(card.name) + "</b>" + table(rows.concat([
                  [t("所在区划"), card.area_name],
                  [t("结对组织"), card.run_id ? t("{n} 个（共驻共建）", { n: card.paired }) : t("尚无分析")]
                ])));
              });
          });
        }
      }).addTo(group);
    },
    stations: function (data, group) {
      L.geoJSON(data, {
        pointToLayer: function (f, latlng) {
          return L.circleMarker(latlng, { radius: 6, color: COLOR.stations, weight: 2, fillColor: "#4dd0e1", fillOpacity: 0.9 });
        },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          layer.bindPopup("<b>" + esc(p.name) + "</b>" + table([[t("类型"), label(STATION_KINDS, p.kind)], [t("设施"), p.facilities]]));
        }
      }).addTo(group);
    }
  };

  // An aggregate of organizations (a server cell or a browser cluster) is drawn by its coverage
  // mix, never by its size: a ring of each status's share around the count, so a quarter blank
  // shows as a quarter of red whatever the total. Counts: status → n.
  function mixMarker(counts) {
    var n = 0, parts = [], at = 0, lines = [];
    STATUS_ORDER.forEach(function (k) { n += Number(counts[k]) || 0; });
    STATUS_ORDER.forEach(function (k) {
      var m = Number(counts[k]) || 0;
      if (!m) return;
      var to = at + 100 * m / n;
      parts.push(STATUS[k].color + " " + at.toFixed(2) + "% " + to.toFixed(2) + "%");
      lines.push(t(STATUS[k].label) + " " + m);
      at = to;
    });
    var size = Math.round(22 + 8 * Math.log10(n + 1));
    return {
      icon: L.divIcon({
        className: "ht-mix-icon",
        html: '<span class="ht-mix" style="width:' + size + "px;height:" + size + "px;background:conic-gradient(" +
          parts.join(",") + ')"><b>' + n + "</b></span>",
        iconSize: [size, size]
      }),
      title: [t("{n} 个组织", { n: n })].concat(lines).join(" · "),
      hongtuCounts: counts
    };
  }

  function clusterIcon(cluster) {
    var counts = {};
    cluster.getAllChildMarkers().forEach(function (m) { counts[m.hongtuStatus] = (counts[m.hongtuStatus] || 0) + 1; });
    return mixMarker(counts).icon;
  }

  function renderOrgs(data, groups, cfg) {
    var counter = document.getElementById("ht-visible");
    if (counter) counter.textContent = data.total;
    // The legend follows the view and the filters: how many of each status are in view.
    document.querySelectorAll(".ht-legend .ht-n").forEach(function (el) {
      var n = (data.by_status || {})[el.dataset.status] || 0;
      el.textContent = n;
      el.parentNode.classList.toggle("ht-none", n === 0);
    });
    if (data.mode === "clusters") {
      data.features.forEach(function (f) {
        var c = f.geometry.coordinates;
        L.marker([c[1], c[0]], mixMarker(f.properties))
          .on("click", function (e) { e.target._map.setView(e.latlng, e.target._map.getZoom() + 2); })
          .addTo(groups.orgs_clusters);
      });
      return;
    }
    var markers = data.features.map(function (f) {
      var c = f.geometry.coordinates, s = STATUS[f.properties.status] || STATUS.blank;
      // Placed only somewhere in its community or street: a hollow, dashed ring, never a dot
      // that claims an exact position.
      var approximate = (cfg.approximate || []).indexOf(f.properties.located_by) >= 0;
      var marker = L.circleMarker([c[1], c[0]], approximate ? {
        radius: 7, color: s.color, weight: 2, dashArray: "3 3", fillColor: "#fff", fillOpacity: 0.6, bubblingMouseEvents: false
      } : {
        radius: 6, color: "#fff", weight: 1, fillColor: s.color, fillOpacity: 0.95, bubblingMouseEvents: false
      });
      marker.hongtuStatus = f.properties.status;
      return bindCard(marker, f.properties, cfg);
    });
    groups.orgs.addLayers(markers);
  }

  function init(map, control, groups, cfg) {
    cfg.statuses.forEach(function (st) { STATUS[st.key] = st; STATUS_ORDER.push(st.key); });
    var words = cfg.words || {};
    L.extend(RUN_STATUS, words.runStatus); L.extend(COVERAGE_KINDS, words.coverageKinds);
    L.extend(ORG_TYPES, words.orgTypes); L.extend(PLACE_KINDS, words.placeKinds);
    L.extend(CENTER_LEVELS, words.centerLevels); L.extend(STATION_KINDS, words.stationKinds);
    cfg.layers.forEach(function (spec) { if (spec.symbol) COLOR[spec.key] = spec.symbol.color; });
    groups.orgs.options.iconCreateFunction = clusterIcon;
    // Plain text: Leaflet's default prefix carries a flag, out of place in a party-building report.
    map.attributionControl.setPrefix("Leaflet");
    L.control.scale({ imperial: false }).addTo(map);
    var base = {};
    // Overlays are drawn in the coordinates of the base map: GCJ-02 under AMap, else WGS-84.
    cfg.displayCrs = "wgs84";
    cfg.basemaps.forEach(function (b, i) {
      var layer = L.layerGroup(b.urls.map(function (u) {
        return L.tileLayer(u, { subdomains: b.subdomains || "abc", attribution: b.attribution, maxZoom: 19 });
      }));
      layer.hongtuCrs = b.crs || "wgs84";
      layer.hongtuId = b.id;
      base[b.id] = layer;
      control.addBaseLayer(layer, b.name);
      if (i === 0) { layer.addTo(map); cfg.displayCrs = layer.hongtuCrs; cfg.basemapId = b.id; }
    });
    map.on("baselayerchange", function (e) {
      cfg.basemapId = e.layer.hongtuId;
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
      if (cfg.inline) {
        // A standalone file carries its data: drawn once, redrawn only when toggled back on.
        if (!visible) { clear(); group.hongtuDrawn = false; return; }
        if (!group.hongtuDrawn && cfg.inline[name]) { render(cfg.inline[name], group, cfg); group.hongtuDrawn = true; }
        return;
      }
      if (!visible || map.getZoom() < min) { clear(); return; }
      if (pending[name]) pending[name].abort();
      var ctrl = new AbortController();
      pending[name] = ctrl;
      var b = map.getBounds();
      var url = cfg.data.replace("__layer__", name) + "?bbox=" +
        [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); }).join(",") +
        "&zoom=" + map.getZoom() + crsQuery(cfg) + (name === "orgs" ? filterQuery(cfg) : "") +
        (cfg.token ? "&token=" + encodeURIComponent(cfg.token) : "");
      fetch(url, { signal: ctrl.signal })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        // Swap only when the new data is here: no flicker, and what is shown stays clickable.
        .then(function (data) { clear(); render(data, group, cfg); })
        .catch(function (e) { if (e.name !== "AbortError" && window.console) console.warn("hongtu", name, e); });
    }

    // The organizations first: the layer people open the map for is asked for before the
    // outlines and results drawn around it (a browser sends six requests at a time and the
    // server's workers take them in turn).
    // Every layer of the catalogue (cfg.layers, from app/layers.py), drawn by its kind's
    // renderer or its own.
    var layers = { orgs: function (data) { renderOrgs(data, groups, cfg); } };
    var areaLevels = [];
    cfg.layers.forEach(function (spec) {
      var key = spec.key;
      if (spec.kind === "area") { layers[key] = renderers.area(key, spec.style); areaLevels.push(key); }
      else if (spec.kind === "run") layers[key] = renderers.run(spec.style, spec.label);
      else if (key !== "orgs" && renderers[key]) layers[key] = renderers[key];
      else if (spec.kind === "line" && spec.style) layers[key] = renderers.lines(spec.style);
    });
    Object.keys(layers).forEach(function (name) {
      if (name !== "orgs" && !groups[name]) delete layers[name];
    });
    function refresh() {
      cfg.gridShown = !!groups.grid && map.hasLayer(groups.grid);
      Object.keys(layers).forEach(function (name) { load(name, layers[name]); });
    }
    // The legend names what is drawn now: a layer that is on and asked for at this zoom.
    function syncLegend() {
      document.querySelectorAll(".ht-legend .ht-key").forEach(function (el) {
        var key = el.dataset.layer;
        // (A standalone file draws what it carries at any zoom.)
        var asked = cfg.inline || map.getZoom() >= (cfg.minZoom[key] || 0);
        el.hidden = !(groups[key] && map.hasLayer(groups[key]) && asked);
      });
    }
    map.on("moveend", refresh);
    map.on("overlayadd overlayremove", refresh);
    // A new run stored (hongtu-results.js): the layers are drawn from it and the page stays;
    // a page that had no run yet has filters and a legend to gain, and is read anew.
    document.addEventListener("hongtu:newrun", function (e) {
      var shown = document.getElementById("ht-run-id");
      if (!shown) return;
      e.preventDefault();
      shown.textContent = "#" + e.detail.run_id;
      refresh();
    });
    map.on("zoomend overlayadd overlayremove", syncLegend);
    syncLegend();
    document.querySelectorAll(".ht-filter").forEach(function (el) {
      // A filter redraws and recounts at once, even with a card open (which would show a
      // status the filter may now hide): the card is closed first.
      el.addEventListener("change", function () { map.closePopup(); reading = false; load("orgs", layers.orgs); });
    });
    var choropleth = document.querySelector("select[name=choropleth]");
    if (choropleth) choropleth.addEventListener("change", function () {
      areaLevels.forEach(function (level) { if (layers[level]) load(level, layers[level]); });
    });
    setUpSearch(map, cfg);
    setUpShare(map, groups, cfg);
    // On a phone the panel starts folded so the map gets the screen; a tap unfolds it.
    var panel = document.querySelector(".ht-panel-body");
    if (window.matchMedia("(max-width: 640px)").matches) {
      if (panel) panel.open = false;
      // So does the layer control: its button opens it, a tap on the map folds it again.
      control.collapse();
      map.on("click", control.collapse, control);
    }
    // Nearby: a click on the map lists what lies within the service radius, nearest first.
    if (nearbyAllowed(cfg)) map.on("click", function (e) {
      if (!(e.originalEvent && e.originalEvent.hongtuNearby)) showNearby(map, cfg, e.latlng, "");
    });
    if (cfg.area) {
      // An area page: its outline on top, the view fitted to it.
      if (cfg.area.outline) {
        L.geoJSON(cfg.area.outline, { style: { color: "#d50000", weight: 3, fill: false }, interactive: false }).addTo(map);
        // Everything outside the area is veiled, so the eye stays inside it.
        var polygons = cfg.area.outline.type === "Polygon" ? [cfg.area.outline.coordinates] : cfg.area.outline.coordinates;
        var holes = polygons.map(function (rings) { return rings[0].map(function (c) { return [c[1], c[0]]; }); });
        L.polygon([[[-89, -179], [-89, 179], [89, 179], [89, -179]]].concat(holes), {
          stroke: false, fillColor: "#fff", fillOpacity: 0.55, interactive: false
        }).addTo(map);
      }
      if (cfg.fit && cfg.inline) {
        // An export: the area fills the frame, 5 % in from its edges and clear of the title;
        // fractional zoom, or the area may fill as little as half of each side.
        map.options.zoomSnap = 0;
        var size = map.getSize(), title = document.querySelector(".ht-print-title");
        var top = Math.max(0.05 * size.y, title ? title.getBoundingClientRect().bottom + 8 : 0);
        map.fitBounds(cfg.area.bounds, { paddingTopLeft: [0.05 * size.x, top], paddingBottomRight: [0.05 * size.x, 0.05 * size.y], animate: false });
      } else if (cfg.fit) map.fitBounds(cfg.area.bounds);
    }
    refresh();
    window.hongtuReady = true;
    // Handles for embedding pages and browser tests.
    window.hongtuMap = map;
    window.hongtuGroups = groups;
  }

  // The embed URL of what the map shows now: view, layers, base map, filters, language.
  function embedUrl(map, groups, cfg) {
    var params = new URLSearchParams(), layers = [];
    Object.keys(groups).forEach(function (key) {
      if (key === "orgs" || key === "orgs_clusters") return;
      if (map.hasLayer(groups[key])) layers.push(key);
    });
    if (map.hasLayer(groups.orgs) || (groups.orgs_clusters && map.hasLayer(groups.orgs_clusters))) layers.push("orgs");
    var c = map.getCenter();
    params.set("center", c.lat.toFixed(5) + "," + c.lng.toFixed(5));
    params.set("zoom", map.getZoom());
    params.set("layers", layers.join(","));
    if (cfg.basemapId) params.set("basemap", cfg.basemapId);
    document.querySelectorAll(".ht-filter").forEach(function (el) { if (el.value) params.set(el.name, el.value); });
    if (document.documentElement.lang === "en") params.set("lang", "en");
    return location.origin + cfg.embed + "?" + params.toString();
  }

  function setUpShare(map, groups, cfg) {
    var open = document.getElementById("ht-share-open"), dialog = document.getElementById("ht-share");
    if (!open || !dialog) return;
    open.addEventListener("click", function () {
      var url = embedUrl(map, groups, cfg);
      document.getElementById("ht-share-link").value = url;
      document.getElementById("ht-share-iframe").value =
        '<iframe src="' + esc(url) + '" width="800" height="600" style="border:0" loading="lazy"></iframe>';
      document.getElementById("ht-share-preview").href = url;
      dialog.showModal();
    });
  }

  function crsQuery(cfg) {
    return cfg.displayCrs === "wgs84" ? "" : "&crs=" + cfg.displayCrs;
  }

  // The filters chosen in the panel; an area page's own area unless the panel narrows it.
  function filterQuery(cfg) {
    var chosen = L.extend({}, cfg.filters || {});
    if (cfg.area && cfg.area.code) chosen.area = cfg.area.code;
    document.querySelectorAll(".ht-filter").forEach(function (el) { if (el.value) chosen[el.name] = el.value; });
    return Object.keys(chosen).map(function (k) {
      return "&" + encodeURIComponent(k) + "=" + encodeURIComponent(chosen[k]);
    }).join("");
  }

  // Search areas, places, centers, stations and organizations: hits grouped by kind. Choosing an
  // area fits the map to its outline (and offers its page); anything else zooms there and rings it.
  function setUpSearch(map, cfg) {
    var form = document.getElementById("ht-search");
    if (!form) return;
    var list = document.getElementById("ht-search-results"), mark = null;
    var zoomOf = { places: 16, centers: 17, stations: 17, organizations: 17 };
    function marked(layer) {
      if (mark) map.removeLayer(mark);
      mark = layer.addTo(map);
    }
    function choose(kind, hit) {
      if (kind === "areas") {
        map.fitBounds(hit.bounds, { padding: [20, 20] });
        marked(L.geoJSON(hit.outline, { interactive: false, style: { color: "#ff6f00", weight: 3, dashArray: "6 4", fill: false } }));
      } else {
        map.setView([hit.lat, hit.lon], zoomOf[kind]);
        marked(L.circleMarker([hit.lat, hit.lon], { radius: 14, color: "#ff6f00", weight: 3, fill: false, interactive: false }));
      }
      window.hongtuHighlight = kind === "organizations" ? hit.org_id : null;
    }
    function item(kind, hit) {
      var li = document.createElement("li"), detail = document.createElement("small");
      li.textContent = hit.name;
      detail.textContent = kind === "areas" ? " " + hit.level_name + " " + hit.code : hit.address ? "（" + hit.address + "）" : "";
      li.appendChild(detail);
      if (hit.url) {
        var page = document.createElement("a");
        page.href = hit.url;
        page.textContent = t("区域页面");
        page.addEventListener("click", function (ev) { ev.stopPropagation(); });
        li.appendChild(page);
      }
      li.addEventListener("click", function () { choose(kind, hit); list.replaceChildren(); });
      return li;
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var q = form.querySelector("input").value.trim();
      if (!q) return;
      fetch(cfg.search + "?q=" + encodeURIComponent(q) + crsQuery(cfg)).then(function (r) { return r.json(); }).then(function (data) {
        list.replaceChildren();
        if (!data.groups || !data.groups.length) {
          var none = document.createElement("p");
          none.textContent = t("未找到");
          list.appendChild(none);
          return;
        }
        data.groups.forEach(function (group) {
          var heading = document.createElement("h4"), ul = document.createElement("ul");
          heading.textContent = group.name + " " + group.results.length;
          group.results.forEach(function (hit) { ul.appendChild(item(group.kind, hit)); });
          list.append(heading, ul);
        });
      });
    });
  }

  window.Hongtu = { init: init, esc: esc, t: t };
})();
