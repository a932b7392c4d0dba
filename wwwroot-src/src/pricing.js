// Filter-as-you-type for the pricing page's model tables (per token, and images, audio and moderation). The server
// already filters on ?q= (rows that do not match are rendered hidden), so this only repeats the same match on each
// keystroke: every word must
// appear in the row's data-search text (id, name and provider, lower case), as IndexModel matches it.

/** @param {ParentNode} root */
export function initModelSearch(root) {
  const form = root.querySelector("[data-model-search]");
  const input = form?.querySelector('input[name="q"]');
  // Both tables are filtered; the count above them is of the per-token table's models (data-model rows).
  const rows = [...root.querySelectorAll("tr[data-search]")];
  const counted = rows.filter((row) => row.hasAttribute("data-model"));
  const count = root.querySelector("[data-model-count]");
  const empty = root.querySelector("[data-model-empty]");
  if (!(input instanceof HTMLInputElement) || rows.length === 0) return;

  const apply = () => {
    const query = input.value.trim();
    const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of rows) {
      const text = row.getAttribute("data-search") ?? "";
      const match = terms.every((term) => text.includes(term));
      row.hidden = !match;
      if (match && row.hasAttribute("data-model")) shown++;
    }
    if (count) count.textContent = query ? `${shown} of ${counted.length} models match “${query}”` : `${counted.length} models`;
    if (empty) {
      empty.hidden = shown > 0 || !query;
      const echo = empty.querySelector("[data-model-empty-query]");
      if (echo) echo.textContent = query;
    }
    // Keep the address and the sort links in step, so a reload, a shared link or a re-sort keeps the filter.
    const url = new URL(window.location.href);
    if (query) url.searchParams.set("q", query);
    else url.searchParams.delete("q");
    url.searchParams.delete("handler");
    url.searchParams.delete("usd");
    history.replaceState(null, "", url);
    for (const link of root.querySelectorAll("a[data-sort-link]")) {
      const target = new URL(link.getAttribute("href") ?? "", window.location.href);
      if (query) target.searchParams.set("q", query);
      else target.searchParams.delete("q");
      link.setAttribute("href", target.pathname + target.search + target.hash);
    }
  };

  input.addEventListener("input", apply);
}
