// Enclume's web page: "select all" for the room's PCs, and a note while the live stream is cut
// (htmx's SSE extension reconnects by itself; the first message after it catches up).
"use strict";
document.addEventListener("change", (event) => {
  if (event.target.id !== "select-all") return;
  for (const box of document.querySelectorAll('input[name="pcs"][form="actions"]')) {
    box.checked = event.target.checked;
  }
});
function streamState(paused) {
  const note = document.getElementById("stream-state");
  if (note) note.hidden = !paused;
}
document.addEventListener("htmx:sseError", () => streamState(true));
document.addEventListener("htmx:sseOpen", () => streamState(false));
