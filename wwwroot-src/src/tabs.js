// Code samples in several languages: without JavaScript every panel is shown, each under its own
// label; here the labels become an accessible tab list (WAI-ARIA tabs pattern, arrow keys move).
let nextId = 0;

/** @param {ParentNode} root */
export function initCodeTabs(root) {
  for (const container of root.querySelectorAll("[data-tabs]")) {
    const panels = [...container.querySelectorAll(":scope > .code-panel")];
    const bar = container.querySelector(":scope > .code-bar");
    if (panels.length < 2 || !bar) continue;

    const tablist = document.createElement("div");
    tablist.className = "code-tablist";
    tablist.setAttribute("role", "tablist");
    tablist.setAttribute("aria-label", container.dataset.tabs || "Code samples");

    const tabs = panels.map((panel) => {
      const id = `code-tab-${++nextId}`;
      panel.id ||= `code-panel-${nextId}`;
      const label = panel.querySelector(".code-panel-label")?.textContent?.trim() || `Sample ${nextId}`;

      const tab = document.createElement("button");
      tab.type = "button";
      tab.className = "code-tab";
      tab.id = id;
      tab.textContent = label;
      tab.setAttribute("role", "tab");
      tab.setAttribute("aria-controls", panel.id);
      panel.setAttribute("role", "tabpanel");
      panel.setAttribute("aria-labelledby", id);
      tablist.append(tab);
      return tab;
    });

    const select = (index, focus) => {
      tabs.forEach((tab, i) => {
        const selected = i === index;
        tab.setAttribute("aria-selected", String(selected));
        tab.tabIndex = selected ? 0 : -1;
        panels[i].hidden = !selected;
      });
      if (focus) tabs[index].focus();
    };

    tablist.addEventListener("click", (event) => {
      const index = tabs.indexOf(event.target instanceof Element ? event.target.closest(".code-tab") : null);
      if (index >= 0) select(index, false);
    });

    tablist.addEventListener("keydown", (event) => {
      const current = tabs.indexOf(document.activeElement);
      if (current < 0) return;
      const last = tabs.length - 1;
      const next = { ArrowRight: current === last ? 0 : current + 1, ArrowLeft: current === 0 ? last : current - 1, Home: 0, End: last }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      select(next, true);
    });

    // The tab list takes the place of the title in the window's bar.
    bar.querySelector(".code-title")?.remove();
    bar.querySelector(".code-dots")?.after(tablist);
    select(0, false);
  }
}
