// "Copy" buttons for code windows. A window marked data-copy gets a button in its bar that copies
// the code of its visible panel (prompts such as "$ " are marked .t-p and left out).
const COPY_ICON =
  '<svg viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="1.6" aria-hidden="true"><rect x="6.5" y="6.5" width="10" height="10" rx="2"/><path d="M13.5 6.5V5a1.5 1.5 0 0 0-1.5-1.5H5A1.5 1.5 0 0 0 3.5 5v7A1.5 1.5 0 0 0 5 13.5h1.5"/></svg>';
const DONE_ICON =
  '<svg viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M4.5 10.5l3.5 3.5 7.5-8"/></svg>';

/** @param {ParentNode} root */
export function initCopyButtons(root) {
  for (const win of root.querySelectorAll("[data-copy]")) {
    const bar = win.querySelector(":scope > .code-bar");
    if (!bar) continue;

    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy-button";
    const label = document.createElement("span");
    label.className = "copy-label";
    const status = document.createElement("span");
    status.className = "visually-hidden";
    status.setAttribute("aria-live", "polite");
    const reset = () => {
      button.classList.remove("is-copied");
      button.innerHTML = COPY_ICON;
      label.textContent = "Copy";
      button.append(label);
    };
    reset();
    bar.append(button, status);

    let timer = 0;
    button.addEventListener("click", async () => {
      const pre = visiblePre(win);
      if (!pre) return;
      const ok = await copyText(codeText(pre));
      button.classList.toggle("is-copied", ok);
      button.innerHTML = ok ? DONE_ICON : COPY_ICON;
      label.textContent = ok ? "Copied" : "Select and copy";
      button.append(label);
      status.textContent = ok ? "Code copied to the clipboard" : "Copying is not available; select the code instead";
      if (!ok) selectContents(pre);
      clearTimeout(timer);
      timer = window.setTimeout(() => {
        reset();
        status.textContent = "";
      }, 2000);
    });
  }
}

/** @param {Element} win */
function visiblePre(win) {
  return [...win.querySelectorAll("pre")].find((pre) => !pre.closest("[hidden]")) ?? null;
}

/** Text of a code block without its decorative prompts. @param {HTMLElement} pre */
function codeText(pre) {
  const clone = /** @type {HTMLElement} */ (pre.cloneNode(true));
  for (const prompt of clone.querySelectorAll(".t-p")) prompt.remove();
  return (clone.textContent ?? "").replace(/\s+$/, "") + "\n";
}

/** @param {string} text */
async function copyText(text) {
  try {
    if (!navigator.clipboard || !window.isSecureContext) return false;
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** @param {Node} node */
function selectContents(node) {
  const selection = window.getSelection();
  if (!selection) return;
  const range = document.createRange();
  range.selectNodeContents(node);
  selection.removeAllRanges();
  selection.addRange(range);
}
