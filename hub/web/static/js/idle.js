// Clears the kiosk for the next customer after a period without use. A warning with a large
// "I'm still here" button comes first, and nothing is cleared while a search is running or when
// there is nothing to clear.

const dialog = document.getElementById("idle");
const message = document.getElementById("idle-text");
const ACTIVITY = ["pointerdown", "keydown", "input", "wheel"];

// `onWarn` runs once each time the warning opens (the kiosk reads it aloud to a customer who was
// listening to the answer: the dialog alone is silent).
export function watchIdle({ idleMs, warnMs, isBusy, isClear, onReset, warningText, onWarn = () => {} }) {
  let lastActive = Date.now();

  const active = () => {
    lastActive = Date.now();
    if (dialog.open) dialog.close();
  };
  for (const type of ACTIVITY) document.addEventListener(type, active, { capture: true, passive: true });
  dialog.addEventListener("close", active);
  document.getElementById("still-here").addEventListener("click", active);

  setInterval(() => {
    if (isBusy() || isClear()) {
      lastActive = Date.now();
      return;
    }
    const left = idleMs - (Date.now() - lastActive);
    if (left <= 0) {
      if (dialog.open) dialog.close();
      onReset();
    } else if (left <= warnMs) {
      message.textContent = warningText(Math.ceil(left / 1000));
      if (!dialog.open) {
        dialog.showModal();
        onWarn(message.textContent);
      }
    }
  }, 1000);
}
