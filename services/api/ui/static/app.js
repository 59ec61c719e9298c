// Enclume's web page: "select all" for the room's PCs, a note while the live stream is cut
// (htmx's SSE extension reconnects by itself; the first message after it catches up), and the
// live cards drawn once per frame.
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

// When a whole room changes at once, dozens of cards arrive within a frame: each is kept (the
// latest per PC) and all are drawn together at the next frame, one style and layout pass for
// all instead of one swap (and settle) each. The cards hold no htmx attributes to process.
const pendingCards = new Map();
let frameAsked = 0;
function drawCards() {
  frameAsked = 0;
  const started = performance.now();
  const count = pendingCards.size;
  for (const [card, html] of pendingCards) card.innerHTML = html;
  pendingCards.clear();
  document.dispatchEvent(new CustomEvent("enclume:cards", {
    detail: {cards: count, ms: performance.now() - started}}));
}
document.addEventListener("htmx:sseBeforeMessage", (event) => {
  event.preventDefault();  // htmx does not swap it: drawCards does
  pendingCards.set(event.target, event.detail.data);
  if (!frameAsked) frameAsked = requestAnimationFrame(drawCards);
});
