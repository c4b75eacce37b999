// Copy buttons: progressive enhancement; every page works without this file.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy], button[data-copy-text]");
  if (!button) return;
  const source = button.dataset.copy ? document.getElementById(button.dataset.copy) : null;
  const text = source ? source.innerText : button.dataset.copyText;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch (err) {
    if (source) {
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Selected";
    } else {
      button.textContent = "Copy failed";
    }
  }
  setTimeout(() => { button.textContent = "Copy"; }, 2000);
});
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy], button[data-copy-text]")) button.hidden = false;
});
