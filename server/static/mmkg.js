// Draw every network panel of the page; hover titles become plain-text elements (never parsed as HTML).
window.mmkgNetworks = [];
document.querySelectorAll(".network").forEach(function (container) {
  var data = JSON.parse(document.getElementById(container.id + "-data").textContent);
  function textTitle(item) {
    if (typeof item.title === "string") {
      var element = document.createElement("div");
      element.textContent = item.title;
      item.title = element;
    }
    return item;
  }
  var nodes = new vis.DataSet(data.nodes.map(textTitle));
  var edges = new vis.DataSet(data.edges.map(function (edge, i) { edge.id = i; return textTitle(edge); }));
  var network = new vis.Network(container, {nodes: nodes, edges: edges}, data.options);
  network.once("stabilizationIterationsDone", function () { network.setOptions({physics: {enabled: false}}); });
  window.mmkgNetworks.push(network);
});
