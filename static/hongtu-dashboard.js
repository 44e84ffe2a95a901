/* The dashboard (大屏): one screen of figures drawn by ECharts from /dashboard/data.json.
 * Sizes follow the screen's height (1080 px is the design size), so the same page fills a
 * 1920×1080 and a 3840×2160 wall without scrolling. A click on an area drills down to it. */
(function () {
  "use strict";
  var I18N = window.HONGTU_I18N || {};
  function t(s) { return I18N[s] || s; }
  var board = document.getElementById("ht-board");
  var charts = {};
  var current = board.dataset.area || "";
  var last = null;
  var GOLD = "#ffd54f", TEXT = "#f3e5e5", DIM = "#b89c9c", LINE = "#4a2a2a";

  function scale() { return Math.max(window.innerHeight, 540) / 1080; }
  function px(n) { return Math.round(n * scale()); }
  function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%"; }
  function esc(s) { return echarts.format.encodeHTML(String(s)); }

  function chart(id) {
    if (!charts[id]) charts[id] = echarts.init(document.getElementById(id), null, { renderer: "svg" });
    return charts[id];
  }

  function axisStyle() {
    return {
      axisLabel: { color: DIM, fontSize: px(13) },
      axisLine: { lineStyle: { color: LINE } },
      splitLine: { lineStyle: { color: LINE } },
    };
  }

  function kpis(d) {
    var f = d.figures, box = document.getElementById("ht-b-kpis");
    var items = [
      [f.orgs, t("两新组织"), ""], [f.in_scope, t("在统计范围"), ""],
      [f.blank, t("空白"), "blank"], [f.branches, t("联合党支部建议"), ""],
      [f.unplaced, t("待定位"), f.unplaced ? "warn" : ""],
    ];
    box.replaceChildren();
    items.forEach(function (it) {
      var div = document.createElement("div"), b = document.createElement("b");
      div.className = it[2];
      b.textContent = it[0];
      div.append(b, document.createTextNode(it[1]));
      box.append(div);
    });
  }

  function rates(d) {
    var keys = ["both_rate", "org_coverage_rate", "own_rate", "work_rate"];
    var colors = [GOLD, d.colors.org, "#81c784", d.colors.work];
    var width = document.getElementById("ht-b-rates").clientWidth;
    chart("ht-b-rates").setOption({
      series: keys.map(function (k, i) {
        var v = d.figures[k];
        return {
          type: "gauge", startAngle: 90, endAngle: -270, min: 0, max: 100,
          center: [(12.5 + 25 * i) + "%", "45%"], radius: "38%",
          pointer: { show: false }, axisTick: { show: false }, splitLine: { show: false }, axisLabel: { show: false },
          progress: { show: true, roundCap: true, width: px(10), itemStyle: { color: colors[i] } },
          axisLine: { lineStyle: { width: px(10), color: [[1, LINE]] } },
          title: { offsetCenter: [0, "140%"], color: DIM, fontSize: px(14), lineHeight: px(17),
                   width: width / 4 - px(8), overflow: "break" },
          detail: { offsetCenter: [0, 0], color: TEXT, fontSize: px(18), fontWeight: "bold",
                    formatter: function () { return pct(v); } },
          data: [{ value: v === null ? 0 : Math.round(v * 1000) / 10, name: d.rate_names[k] }],
        };
      }),
    }, true);
  }

  function rank(d) {
    var kids = d.children.slice().reverse();  // the first ranked on top
    document.getElementById("ht-b-rank-title").textContent =
      t("各{level}两个覆盖率排名").replace("{level}", d.child_level || "");
    document.getElementById("ht-b-least").textContent =
      t("在统计范围不足 {n} 家的不参与排名，列在最后").replace("{n}", d.least);
    var many = kids.length > 14;
    chart("ht-b-rank").setOption({
      grid: { left: 8, right: px(110), top: 4, bottom: 4, containLabel: true },
      tooltip: { trigger: "item", formatter: function (p) {
        var k = kids[p.dataIndex];
        return esc(k.name) + "<br>" + t("两个覆盖率") + " " + pct(k.both_rate) + " · n=" + k.in_scope +
          (k.ranked ? "" : "<br>" + t("样本少，未排名"));
      } },
      xAxis: Object.assign({ type: "value", max: 1, axisLabel: { show: false } }, { splitLine: { show: false } }),
      yAxis: Object.assign(axisStyle(), { type: "category", data: kids.map(function (k) {
        return k.name + (k.ranked ? "" : " (n=" + k.in_scope + ")");
      }), axisTick: { show: false } }),
      dataZoom: many ? [{ type: "inside", yAxisIndex: 0, startValue: kids.length - 14, endValue: kids.length - 1 }] : [],
      series: [{
        type: "bar", barMaxWidth: px(18),
        data: kids.map(function (k) {
          var v = k.both_rate === null ? 0 : k.both_rate;
          return { value: v, itemStyle: { color: k.ranked ? rampColor(v) : "#6d5a5a" } };
        }),
        label: { show: true, position: "right", color: TEXT, fontSize: px(13), formatter: function (p) {
          var k = kids[p.dataIndex];
          return pct(k.both_rate) + (k.ranked ? "  n=" + k.in_scope : "");
        } },
      }],
    }, true);
  }

  // The map's choropleth classes of 两个覆盖率 (the same breaks as the map's legend).
  function rampColor(v) {
    if (v < 0.4) return "#c62828";
    if (v < 0.6) return "#ef6c00";
    if (v < 0.75) return "#fbc02d";
    if (v < 0.9) return "#66bb6a";
    return "#1b7a3a";
  }

  function map(d) {
    var name = "area-" + (d.area.code || "city");
    var feats = d.outlines.features;
    if (!feats.length) { chart("ht-b-map").clear(); return; }
    echarts.registerMap(name, d.outlines);
    var names = {}, most = 1;
    feats.forEach(function (f) { names[f.properties.code] = f.properties.name; most = Math.max(most, f.properties.blank); });
    var lat = 0;
    feats.forEach(function (f) { lat += f.geometry.coordinates.flat(3)[1] || 0; });
    var hot = d.hotspots.map(function (h) { return { value: h }; });
    var biggest = d.hotspots.reduce(function (m, h) { return Math.max(m, h[2]); }, 1);
    var byCode = {};
    d.children.forEach(function (k) { byCode[k.code] = k; });
    chart("ht-b-map").setOption({
      tooltip: { trigger: "item", formatter: function (p) {
        if (p.seriesType === "effectScatter") return t("空白热点") + " · " + p.value[2] + " " + t("家空白组织");
        var k = byCode[p.name];
        if (!k) return esc(names[p.name] || p.name);
        return "<b>" + esc(k.name) + "</b><br>" + t("空白") + " " + k.blank + " · " + t("在统计范围") + " " + k.in_scope +
          "<br>" + t("两个覆盖率") + " " + pct(k.both_rate);
      } },
      visualMap: {
        min: 0, max: most, calculable: false, orient: "vertical", left: px(10), bottom: px(10),
        text: [t("空白多"), t("空白少")], textStyle: { color: DIM, fontSize: px(12) },
        inRange: { color: ["#3b2424", "#7b2e2e", "#c62828", "#ff6b6b"] }, seriesIndex: 0,
        itemHeight: px(120), itemWidth: px(12),
      },
      geo: {
        map: name, nameProperty: "code", roam: true, aspectScale: Math.cos((lat / feats.length) * Math.PI / 180),
        layoutCenter: ["50%", "50%"], layoutSize: "95%",
        label: { show: false },
        itemStyle: { borderColor: "#e0a0a0", borderWidth: 1, areaColor: "#3b2424" },
        emphasis: { label: { color: "#fff" }, itemStyle: { areaColor: "#8d3b3b" } },
        select: { disabled: true },
      },
      series: [
        { type: "map", geoIndex: 0, data: feats.map(function (f) { return { name: f.properties.code, value: f.properties.blank }; }) },
        {
          // Names at a point inside each area, the ones that would overlap left out.
          type: "scatter", coordinateSystem: "geo", symbolSize: 1, itemStyle: { color: "transparent" }, silent: true, tooltip: { show: false },
          labelLayout: { hideOverlap: true },
          label: { show: true, formatter: "{b}", color: TEXT, fontSize: px(12), textBorderColor: "#140a0a", textBorderWidth: 2 },
          data: feats.slice().sort(function (a, b) { return b.properties.blank - a.properties.blank; }).map(function (f) {
            return { name: f.properties.name, value: f.properties.label };
          }),
        },
        {
          type: "effectScatter", coordinateSystem: "geo", data: hot, zlevel: 1,
          symbolSize: function (v) { return px(6 + 16 * Math.sqrt(v[2] / biggest)); },
          rippleEffect: { scale: 2.5, brushType: "stroke" },
          itemStyle: { color: "#ff5252", borderColor: "#fff", borderWidth: 1 },
        },
      ],
    }, true);
  }

  function trend(d) {
    var runs = d.trend;
    var keys = ["both_rate", "org_coverage_rate", "work_rate"];
    var colors = [GOLD, d.colors.org, d.colors.work];
    chart("ht-b-trend").setOption({
      color: colors,
      grid: { left: 8, right: px(16), top: px(34), bottom: 4, containLabel: true },
      legend: { type: "scroll", top: 0, textStyle: { color: DIM, fontSize: px(12) }, itemWidth: px(16), itemHeight: px(8), pageTextStyle: { color: DIM } },
      tooltip: { trigger: "axis", valueFormatter: pct },
      xAxis: Object.assign(axisStyle(), { type: "category", data: runs.map(function (r) { return "#" + r.run_id + " " + r.date; }) }),
      yAxis: Object.assign(axisStyle(), { type: "value", min: 0, max: 1, axisLabel: { color: DIM, fontSize: px(12), formatter: function (v) { return Math.round(v * 100) + "%"; } } }),
      series: keys.map(function (k) {
        return { type: "line", name: d.rate_names[k], symbolSize: px(6), data: runs.map(function (r) { return r[k]; }) };
      }),
    }, true);
  }

  function industry(d) {
    var rows = d.industries.slice().reverse();
    var parts = [["covered", t("组织覆盖"), d.colors.org], ["work", t("工作覆盖"), d.colors.work], ["blank", t("空白"), d.colors.blank]];
    chart("ht-b-industry").setOption({
      grid: { left: 8, right: px(16), top: px(30), bottom: 4, containLabel: true },
      legend: { type: "scroll", top: 0, textStyle: { color: DIM, fontSize: px(12) }, itemWidth: px(14), itemHeight: px(10), pageTextStyle: { color: DIM } },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: Object.assign(axisStyle(), { type: "value" }),
      yAxis: Object.assign(axisStyle(), { type: "category", data: rows.map(function (r) { return r.name; }), axisTick: { show: false } }),
      series: parts.map(function (p) {
        return { type: "bar", stack: "all", name: p[1], itemStyle: { color: p[2] }, barMaxWidth: px(16),
                 data: rows.map(function (r) { return r[p[0]]; }) };
      }),
    }, true);
  }

  function blanks(d) {
    var kids = d.children.filter(function (k) { return k.blank > 0; }).sort(function (a, b) { return b.blank - a.blank; }).slice(0, 12);
    document.getElementById("ht-b-blank-title").textContent = t("各{level}空白组织").replace("{level}", d.child_level || "");
    chart("ht-b-blank").setOption({
      grid: { left: 8, right: px(16), top: px(18), bottom: 4, containLabel: true },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: Object.assign(axisStyle(), { type: "category", data: kids.map(function (k) { return k.name; }),
        axisLabel: { color: DIM, fontSize: px(12), interval: 0, rotate: kids.length > 6 ? 30 : 0 } }),
      yAxis: Object.assign(axisStyle(), { type: "value", minInterval: 1 }),
      series: [{ type: "bar", name: t("空白"), barMaxWidth: px(22), itemStyle: { color: d.colors.blank },
                 label: { show: true, position: "top", color: TEXT, fontSize: px(12) },
                 data: kids.map(function (k) { return k.blank; }) }],
    }, true);
  }

  function table(d) {
    var body = document.querySelector("#ht-b-table tbody");
    body.replaceChildren();
    d.children.forEach(function (k) {
      var tr = document.createElement("tr");
      [k.name, k.in_scope, pct(k.both_rate), k.blank].forEach(function (v) {
        var td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      });
      body.append(tr);
    });
  }

  function heading(d) {
    document.getElementById("ht-b-name").textContent = t("{name}两新组织党建数据看板").replace("{name}", d.area.name);
    document.getElementById("ht-b-run").textContent = d.run ? t("分析") + " #" + d.run.id + " · " + d.run.date : "";
    var nav = document.getElementById("ht-b-trail");
    nav.replaceChildren();
    if (d.trail.length < 2) return;
    d.trail.forEach(function (a, i) {
      if (i) nav.append(document.createTextNode(" › "));
      var last = i === d.trail.length - 1;
      var el = document.createElement(last ? "b" : "a");
      el.textContent = a.name;
      if (!last) {
        el.href = "#";
        el.addEventListener("click", function (e) { e.preventDefault(); load(a.code || ""); });
      }
      nav.append(el);
    });
  }

  function draw(d) {
    heading(d);
    var empty = !d.run;
    document.getElementById("ht-b-empty").hidden = !empty;
    board.classList.toggle("ht-b-none", empty);
    if (empty) return;
    kpis(d); rates(d); rank(d); map(d); trend(d); industry(d); blanks(d); table(d);
  }

  function load(code) {
    var url = board.dataset.url + (code ? "?area=" + encodeURIComponent(code) : "");
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.json();
    }).then(function (d) {
      current = code;
      last = d;
      history.replaceState(null, "", board.dataset.self + (code ? "?area=" + encodeURIComponent(code) : "") +
        (board.dataset.refresh > 0 ? (code ? "&" : "?") + "refresh=" + board.dataset.refresh : ""));
      draw(d);
      board.dataset.loaded = code || "city";
    });
  }

  function start() {
    chart("ht-b-map").on("click", function (p) {
      if (p.componentType === "geo" || p.seriesType === "map") {
        if (last && last.child_level && last.area.level !== "community") load(p.name);
      }
    });
    window.addEventListener("resize", function () {
      Object.values(charts).forEach(function (c) { c.resize(); });
      if (last) draw(last);
    });
    document.addEventListener("hongtu:newrun", function () { load(current); });
    var every = parseInt(board.dataset.refresh, 10);
    if (every > 0) setInterval(function () { load(current); }, every * 1000);
    load(current);
  }

  if (window.echarts) start(); else window.addEventListener("load", start);
})();
