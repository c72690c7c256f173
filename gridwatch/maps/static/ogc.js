// /ogc?f=html: the page's features (GeoJSON, given as JSON in #ogc-data) on a small map with
// no base layer (a closed network reaches no tile server); a feature's id in its tooltip.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("ogc-data").textContent);
  const map = L.map("ogc-map", { attributionControl: false });
  const layer = L.geoJSON(data, {
    // outlines for areas; points keep the marker's own colours below
    style: (feature) => (feature.geometry.type === "Point" ? {} : { color: "#1f5fa8", weight: 1.5, fillOpacity: 0.12 }),
    pointToLayer: (_feature, at) => L.circleMarker(at, { radius: 6, color: "#7b1f16", weight: 1.5, fillColor: "#d2432f",
                                                          fillOpacity: 0.9 }),
    onEachFeature: (feature, shape) => {
      const label = document.createElement("span");
      label.textContent = String(feature.id);  // text, never HTML
      shape.bindTooltip(label);
    },
  }).addTo(map);
  const bounds = layer.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [12, 12], maxZoom: 14 });
  else map.setView([0, 0], 1);
})();
