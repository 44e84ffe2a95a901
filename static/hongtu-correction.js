/* The new-organization and visit forms: "use my location" fills the position from the phone's GPS. */
(function () {
  "use strict";
  var button = document.getElementById("ht-use-location");
  var note = document.getElementById("ht-location-note");
  if (!button) return;
  var words = JSON.parse(button.getAttribute("data-words") || "{}");
  button.addEventListener("click", function () {
    if (!navigator.geolocation) { note.textContent = words.nogps; return; }
    note.textContent = words.locating;
    navigator.geolocation.getCurrentPosition(function (p) {
      document.getElementById("ht-lon").value = p.coords.longitude.toFixed(6);
      document.getElementById("ht-lat").value = p.coords.latitude.toFixed(6);
      document.getElementById("ht-source").value = "gps";
      note.textContent = words.accuracy.replace("{n}", Math.round(p.coords.accuracy));
    }, function (err) {
      note.textContent = err.code === 1 ? words.denied : words.nogps;
    }, { enableHighAccuracy: true, timeout: 15000 });
  });
})();
