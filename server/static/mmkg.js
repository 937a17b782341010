// mmkg's views in the browser: draw each network at the positions the server computed (physics off), zoom
// only with Ctrl/⌘ + wheel or the buttons, highlight a node's neighbourhood, list the segments behind a node or
// a link (named query `segments`), find a code, and export the figure as PNG or SVG and its table as CSV.
// Text from the data is only ever set as text (textContent, SVG text nodes), never parsed as HTML.
(function () {
  "use strict";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var FADED = "#e4e7eb";
  var FADED_TEXT = "#9aa5b1";
  var views = {};
  window.mmkgNetworks = [];
  window.mmkgViews = views;

  function textTitle(item) {
    if (typeof item.title === "string" && item.title) {
      var element = document.createElement("div");
      element.textContent = item.title;
      item.title = element;
    }
    return item;
  }

  function copy(value) { return JSON.parse(JSON.stringify(value)); }

  document.querySelectorAll(".network").forEach(function (container) {
    var data = JSON.parse(document.getElementById(container.id + "-data").textContent);
    var nodes = new vis.DataSet(data.nodes.map(function (n) { return textTitle(copy(n)); }));
    var edges = new vis.DataSet(data.edges.map(function (e, i) {
      e = copy(e);
      if (e.id === undefined) e.id = "e" + i;
      return textTitle(e);
    }));
    var network = new vis.Network(container, {nodes: nodes, edges: edges}, data.options);
    var view = {id: container.id, container: container, data: data, nodes: nodes, edges: edges, network: network,
                byNode: {}, byEdge: {}};
    data.nodes.forEach(function (n) { view.byNode[n.id] = n; });
    data.edges.forEach(function (e, i) { view.byEdge[e.id === undefined ? "e" + i : e.id] = e; });
    views[container.id] = view;
    window.mmkgNetworks.push(network);
    network.fit({animation: false});
    network.once("afterDrawing", function () { container.dataset.ready = "1"; });
    network.on("click", function (params) { onClick(view, params); });
    container.addEventListener("wheel", function (event) {
      if (!(event.ctrlKey || event.metaKey)) return;  // a plain wheel scrolls the page
      event.preventDefault();
      var rect = container.getBoundingClientRect();
      zoom(view, event.deltaY < 0 ? 1.15 : 1 / 1.15, {x: event.clientX - rect.left, y: event.clientY - rect.top});
    }, {passive: false});
  });

  function zoom(view, factor, pointer) {
    var network = view.network;
    var scale = network.getScale() * factor;
    var centre = network.getViewPosition();
    if (pointer) {
      var p = network.DOMtoCanvas(pointer);
      centre = {x: p.x + (centre.x - p.x) / factor, y: p.y + (centre.y - p.y) / factor};
    }
    network.moveTo({scale: scale, position: centre, animation: false});
  }

  // ---------------------------------------------------------------------------------------------- neighbourhood
  function highlight(view, nodeId) {
    var keep = {};
    keep[nodeId] = true;
    view.network.getConnectedNodes(nodeId).forEach(function (id) { keep[id] = true; });
    var keepEdges = {};
    view.network.getConnectedEdges(nodeId).forEach(function (id) { keepEdges[id] = true; });
    view.nodes.update(view.data.nodes.map(function (n) {
      return keep[n.id] ? {id: n.id, color: n.color, font: n.font || {color: view.data.options.nodes.font.color}}
        : {id: n.id, color: {background: FADED, border: "#cbd2d9"}, font: {color: FADED_TEXT}};
    }));
    view.edges.update(view.edges.getIds().map(function (id) {
      var original = view.byEdge[id] || {};
      return keepEdges[id] ? {id: id, color: original.color || {color: "#52606d", opacity: 1}}
        : {id: id, color: {color: FADED, opacity: 0.6}};
    }));
    view.highlighted = nodeId;
  }

  function unhighlight(view) {
    if (view.highlighted === undefined) return;
    view.nodes.update(view.data.nodes.map(function (n) {
      return {id: n.id, color: n.color, font: n.font || {color: view.data.options.nodes.font.color}};
    }));
    view.edges.update(view.edges.getIds().map(function (id) {
      var original = view.byEdge[id] || {};
      return {id: id, color: original.color || view.data.options.edges.color};
    }));
    view.highlighted = undefined;
  }

  function onClick(view, params) {
    if (params.nodes.length) {
      highlight(view, params.nodes[0]);
      openDrill(view, view.byNode[params.nodes[0]], "node");
    } else if (params.edges.length) {
      unhighlight(view);
      openDrill(view, view.byEdge[params.edges[0]], "edge");
    } else {
      unhighlight(view);
    }
  }

  // ---------------------------------------------------------------------------------------------- drill-down
  function element(tag, text, className) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (className) e.className = className;
    return e;
  }

  function position(row) {
    if (row.start !== null && row.start !== undefined) return row.start + "–" + row.end;
    if (row.x !== null && row.x !== undefined) return "x " + row.x + ", y " + row.y + ", " + row.width + " × " + row.height;
    return "whole source";
  }

  function describe(view, item, kind) {
    if (kind === "node") return item.label || item.id;
    var a = view.byNode[item.from] || {}, b = view.byNode[item.to] || {};
    return (a.label || item.from) + " — " + (b.label || item.to);
  }

  function openDrill(view, item, kind) {
    var body = document.getElementById("drill-body");
    if (!body || !item || !item.drill || !view.data.drill) return;
    var calls = item.drill.calls || [item.drill];
    var token = {};
    view.drillToken = token;
    body.textContent = "";
    body.dataset.state = "loading";
    var hint = document.getElementById("drill-hint");
    if (hint) hint.textContent = "";
    var heading = element("h3", describe(view, item, kind));
    body.appendChild(heading);
    var what = kind === "edge" && item.drill.code_b ? "segments where both codes occur (unit: " + view.data.drill.unit + ")"
      : "segments coded with it";
    var status = element("p", "loading " + what + " …", "subtitle");
    body.appendChild(status);
    Promise.all(calls.map(function (call) {
      var params = Object.assign({}, view.data.drill, call);
      var url = "/api/queries/segments?" + new URLSearchParams(params).toString();
      return fetch(url, {headers: {Accept: "application/json"}}).then(function (reply) {
        return reply.json().then(function (json) {
          if (!reply.ok) throw new Error((json.error && json.error.message) || ("HTTP " + reply.status));
          return json.rows;
        });
      });
    })).then(function (results) {
      if (view.drillToken !== token) return;
      var rows = [].concat.apply([], results);
      status.textContent = rows.length + " " + what + ". Query: segments (also GET /api/queries/segments, mmkg query segments).";
      body.appendChild(segmentTable(rows));
      body.dataset.state = "done";
      body.dataset.rows = String(rows.length);
    }).catch(function (error) {
      if (view.drillToken !== token) return;
      status.textContent = "The segments could not be loaded: " + error.message;
      body.dataset.state = "error";
    });
  }

  function segmentTable(rows) {
    var list = element("ol", null, "segments");
    rows.forEach(function (row) {
      var item = document.createElement("li");
      item.dataset.segment = row.segment_id;
      var meta = element("p", null, "segment-meta");
      [["participant", row.participant_id], ["source", row.source_id + " (" + row.segment_id + ")"],
       ["position", position(row)], ["coder", row.coder], ["codes", (row.codes || []).join(", ")]].forEach(function (f) {
        var span = element("span", f[1]);
        span.dataset.field = f[0];
        span.title = f[0];
        meta.appendChild(span);
      });
      item.appendChild(meta);
      var text = element("blockquote", row.text || "(no text in the study)", row.text ? "" : "no-text");
      text.dataset.field = "text";
      item.appendChild(text);
      list.appendChild(item);
    });
    return list;
  }

  // ---------------------------------------------------------------------------------------------- toolbar
  document.querySelectorAll(".toolbar").forEach(function (bar) {
    var view = views[bar.dataset.network];
    if (!view) return;
    bar.addEventListener("click", function (event) {
      var action = event.target.dataset && event.target.dataset.action;
      if (action === "zoom-in") zoom(view, 1.25);
      else if (action === "zoom-out") zoom(view, 1 / 1.25);
      else if (action === "reset") { unhighlight(view); view.network.fit({animation: false}); }
      else if (action === "png") exportPng(view);
      else if (action === "svg") exportSvg(view);
      else if (action === "csv") exportCsv(view);
    });
    var search = bar.querySelector("[data-action=search]");
    if (search) {
      var find = function () {
        var wanted = search.value.trim().toLowerCase();
        if (!wanted) return;
        var hit = view.data.nodes.filter(function (n) {
          return (n.label || "").toLowerCase() === wanted || String(n.id).toLowerCase() === wanted;
        })[0] || view.data.nodes.filter(function (n) {
          return (n.label || "").toLowerCase().indexOf(wanted) >= 0;
        })[0];
        search.setCustomValidity(hit ? "" : "no code named so in this figure");
        if (!hit) { search.reportValidity(); return; }
        view.network.selectNodes([hit.id]);
        view.network.focus(hit.id, {scale: Math.max(view.network.getScale(), 1), animation: false});
        highlight(view, hit.id);
        openDrill(view, hit, "node");
      };
      search.addEventListener("change", find);
      search.addEventListener("keydown", function (event) { if (event.key === "Enter") { event.preventDefault(); find(); } });
    }
  });

  document.querySelectorAll("form.controls .relayout").forEach(function (button) {
    button.addEventListener("click", function () {
      var form = button.form, seed = form.querySelector("[data-relayout]");
      seed.value = String((parseInt(seed.value, 10) || 0) + 1);
      form.submit();
    });
  });

  // ---------------------------------------------------------------------------------------------- export
  function download(blob, name) {
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
  }

  function exportPng(view) {
    var source = view.container.querySelector("canvas");
    var canvas = document.createElement("canvas");
    canvas.width = source.width;
    canvas.height = source.height;
    var context = canvas.getContext("2d");
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(source, 0, 0);
    canvas.toBlob(function (blob) { download(blob, view.data.export + ".png"); }, "image/png");
  }

  function csvCell(value) {
    var text = String(value === null || value === undefined ? "" : value);
    // a cell a spreadsheet would run as a formula is written as text
    if (/^[=+\-@\t\r]/.test(text) && isNaN(Number(text))) text = "'" + text;
    return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function exportCsv(view) {
    var t = view.data.table;
    var lines = [t.columns.map(csvCell).join(",")].concat(t.rows.map(function (r) { return r.map(csvCell).join(","); }));
    download(new Blob([lines.join("\n") + "\n"], {type: "text/csv;charset=utf-8"}), view.data.export + ".csv");
  }

  function svgElement(tag, attributes, parent) {
    var e = document.createElementNS(SVG_NS, tag);
    Object.keys(attributes).forEach(function (k) {
      if (attributes[k] !== undefined && attributes[k] !== null) e.setAttribute(k, String(attributes[k]));
    });
    if (parent) parent.appendChild(e);
    return e;
  }

  function colourOf(value, fallback) {
    if (!value) return fallback;
    if (typeof value === "string") return value;
    return value.background || value.color || fallback;
  }

  function borderOf(value, fallback) {
    return value && typeof value === "object" && value.border ? value.border : fallback;
  }

  function wrap(text, width) {
    var words = String(text).split(/\s+/), lines = [], line = "";
    words.forEach(function (w) {
      if ((line + " " + w).trim().length > width) { if (line) lines.push(line); line = w; }
      else line = (line + " " + w).trim();
    });
    if (line) lines.push(line);
    return lines;
  }

  function exportSvg(view) {
    var network = view.network, body = network.body, options = view.data.options;
    var positions = network.getPositions();
    var font = options.nodes.font, fontFamily = font.face || "sans-serif";
    var context = network.canvas.getContext();
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    function grow(x0, y0, x1, y1) { minX = Math.min(minX, x0); minY = Math.min(minY, y0); maxX = Math.max(maxX, x1); maxY = Math.max(maxY, y1); }
    view.nodes.getIds().forEach(function (id) {
      var box = network.getBoundingBox(id);
      if (box) grow(box.left, box.top, box.right, box.bottom);
    });
    view.edges.getIds().forEach(function (id) {
      var edge = body.edges[id];
      if (edge && edge.fromId === edge.toId && edge.edgeType && edge.edgeType._getCircleData) {
        var circle = edge.edgeType._getCircleData(context);
        grow(circle[0] - circle[2], circle[1] - circle[2], circle[0] + circle[2], circle[1] + circle[2]);
      }
    });
    var pad = 30, captionLines = wrap(view.data.caption || "", Math.max(60, Math.round((maxX - minX) / 7)));
    var width = maxX - minX + 2 * pad, height = maxY - minY + 2 * pad + captionLines.length * 16 + 10;
    var svg = svgElement("svg", {xmlns: SVG_NS, width: Math.round(width), height: Math.round(height),
      viewBox: [minX - pad, minY - pad, width, height].map(function (v) { return v.toFixed(1); }).join(" "),
      "font-family": fontFamily});
    svgElement("title", {}, svg).textContent = view.data.caption || "";
    svgElement("rect", {x: minX - pad, y: minY - pad, width: width, height: height, fill: "#ffffff"}, svg);
    var defs = svgElement("defs", {}, svg), markers = {};
    function marker(colour) {
      if (markers[colour]) return markers[colour];
      var id = "arrow" + Object.keys(markers).length;
      var m = svgElement("marker", {id: id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 5, markerHeight: 5,
        orient: "auto-start-reverse", markerUnits: "strokeWidth"}, defs);
      svgElement("path", {d: "M0 0 10 5 0 10z", fill: colour}, m);
      markers[colour] = id;
      return id;
    }
    var edgeLayer = svgElement("g", {"class": "edges"}, svg), labelLayer = svgElement("g", {"class": "edge-labels"});
    view.edges.get().forEach(function (item) {
      var edge = body.edges[item.id];
      if (!edge || !positions[item.from] || !positions[item.to]) return;
      var from = positions[item.from], to = positions[item.to];
      var colour = (item.color && item.color.color) || options.edges.color.color;
      var opacity = (item.color && item.color.opacity !== undefined) ? item.color.opacity : options.edges.color.opacity;
      var attributes = {fill: "none", stroke: colour, "stroke-width": edge.options.width || 1, "stroke-opacity": opacity};
      if (item.dashes) attributes["stroke-dasharray"] = "8 5";
      if (item.arrows === "to" || (edge.options.arrows && edge.options.arrows.to && edge.options.arrows.to.enabled)) {
        attributes["marker-end"] = "url(#" + marker(colour) + ")";
      }
      var mid;
      if (item.from === item.to && edge.edgeType._getCircleData) {
        var c = edge.edgeType._getCircleData(context);
        svgElement("circle", Object.assign({cx: c[0], cy: c[1], r: c[2]}, attributes, {"marker-end": null}), edgeLayer);
        mid = {x: c[0], y: c[1] - c[2]};
      } else {
        var via = edge.edgeType && edge.edgeType._getViaCoordinates ? edge.edgeType._getViaCoordinates() : null;
        var end = trim(body.nodes[item.to], via || from, to);
        if (via && via.x !== undefined) {
          attributes.d = "M" + from.x + " " + from.y + " Q" + via.x + " " + via.y + " " + end.x + " " + end.y;
          mid = {x: 0.25 * from.x + 0.5 * via.x + 0.25 * to.x, y: 0.25 * from.y + 0.5 * via.y + 0.25 * to.y};
        } else {
          attributes.d = "M" + from.x + " " + from.y + " L" + end.x + " " + end.y;
          mid = {x: (from.x + to.x) / 2, y: (from.y + to.y) / 2};
        }
        svgElement("path", attributes, edgeLayer);
      }
      if (item.label) {
        var size = (item.font && item.font.size) || options.edges.font.size;
        var text = svgElement("text", {x: mid.x, y: mid.y + size / 3, "text-anchor": "middle", "font-size": size,
          fill: (item.font && item.font.color) || options.edges.font.color, stroke: "#ffffff", "stroke-width": 4,
          "paint-order": "stroke"}, labelLayer);
        text.textContent = item.label;
      }
    });
    var nodeLayer = svgElement("g", {"class": "nodes"}, svg);
    view.nodes.get().forEach(function (item) {
      var node = body.nodes[item.id], p = positions[item.id];
      if (!node || !p) return;
      var fill = colourOf(item.color, "#97c2fc"), stroke = borderOf(item.color, "#52606d");
      var shape = item.shape || options.nodes.shape, r = node.options.size;
      var style = {fill: fill, stroke: stroke, "stroke-width": 1.5};
      var labelY = p.y + r + font.size, inside = false;
      if (shape === "text") {
        labelY = p.y + ((item.font && item.font.size) || font.size) / 3;
        inside = true;
      } else if (shape === "box") {
        var w = node.shape.width, h = node.shape.height;
        var dashes = item.shapeProperties && item.shapeProperties.borderDashes;
        svgElement("rect", Object.assign({x: p.x - w / 2, y: p.y - h / 2, width: w, height: h, rx: 5}, style,
          {"stroke-width": item.borderWidth || 1.5, "stroke-dasharray": dashes ? dashes.join(" ") : null}), nodeLayer);
        labelY = p.y + ((item.font && item.font.size) || font.size) / 3;
        inside = true;
      } else if (shape === "diamond") {
        svgElement("polygon", Object.assign({points: [[p.x, p.y - r], [p.x + r, p.y], [p.x, p.y + r], [p.x - r, p.y]].join(" ")}, style), nodeLayer);
      } else if (shape === "square") {
        svgElement("rect", Object.assign({x: p.x - r, y: p.y - r, width: 2 * r, height: 2 * r}, style), nodeLayer);
      } else if (shape === "triangle" || shape === "triangleDown") {
        var s = shape === "triangle" ? 1 : -1;
        svgElement("polygon", Object.assign({points: [[p.x, p.y - s * r], [p.x + r, p.y + s * r * 0.6], [p.x - r, p.y + s * r * 0.6]].join(" ")}, style), nodeLayer);
      } else {
        svgElement("circle", Object.assign({cx: p.x, cy: p.y, r: r}, style), nodeLayer);
      }
      if (item.label) {
        var own = item.font || {};
        var text = svgElement("text", {x: p.x, y: labelY, "text-anchor": "middle", "font-size": own.size || font.size,
          fill: own.color || font.color}, nodeLayer);
        if (!inside) { text.setAttribute("stroke", "#ffffff"); text.setAttribute("stroke-width", 4); text.setAttribute("paint-order", "stroke"); }
        text.textContent = item.label;
      }
    });
    svg.appendChild(labelLayer);
    captionLines.forEach(function (line, i) {
      var t = svgElement("text", {x: minX - pad + 10, y: maxY + pad + 14 + i * 16, "font-size": 12, fill: "#52606d"}, svg);
      t.textContent = line;
    });
    var text = '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(svg);
    download(new Blob([text], {type: "image/svg+xml"}), view.data.export + ".svg");
  }

  // the end of a link at the border of its target node, so the arrowhead is not hidden under it
  function trim(node, from, to) {
    var r = node.shape && node.shape.width ? Math.min(node.shape.width, node.shape.height) / 2 : node.options.size;
    if (node.options.shape === "box" && node.shape.width) {
      var dx = to.x - from.x, dy = to.y - from.y;
      var tx = dx ? (node.shape.width / 2) / Math.abs(dx) : Infinity, ty = dy ? (node.shape.height / 2) / Math.abs(dy) : Infinity;
      var t = Math.min(tx, ty);
      return {x: to.x - dx * t, y: to.y - dy * t};
    }
    var length = Math.hypot(to.x - from.x, to.y - from.y) || 1;
    return {x: to.x - (to.x - from.x) / length * (r + 2), y: to.y - (to.y - from.y) / length * (r + 2)};
  }
})();
