// The main navigation folds behind a "Menu" button on narrow screens (see layout.css, `.js .nav-menu`).
const narrow = window.matchMedia("(max-width: 47.99rem)");

/** @param {Document} doc */
export function initNav(doc) {
  const toggle = doc.querySelector("[data-nav-toggle]");
  const menu = toggle && doc.getElementById(toggle.getAttribute("aria-controls") ?? "");
  if (!(toggle instanceof HTMLButtonElement) || !menu) return;

  const setOpen = (open) => {
    toggle.setAttribute("aria-expanded", String(open));
    menu.classList.toggle("is-open", open);
  };

  toggle.hidden = false;
  setOpen(false);

  toggle.addEventListener("click", () => setOpen(toggle.getAttribute("aria-expanded") !== "true"));

  // Following an in-page link closes the menu so the target is not hidden behind it.
  menu.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest("a") && narrow.matches) setOpen(false);
  });

  doc.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
      setOpen(false);
      toggle.focus();
    }
  });

  // Growing past the breakpoint shows the links inline again; start closed when shrinking back.
  narrow.addEventListener("change", () => setOpen(false));
}
