// AiGate site behaviour. Bundled by build.mjs into AiGate.Web/wwwroot/dist/app.js and loaded
// with `defer`. The site runs under a strict Content-Security-Policy (script-src 'self'), so all
// behaviour is attached here with event listeners, never with inline handlers. Every page works
// without this script; it only adds conveniences (a folding menu, code tabs, copy buttons, filtering the
// pricing table as you type).
import { initNav } from "./nav.js";
import { initCodeTabs } from "./tabs.js";
import { initCopyButtons } from "./copy.js";
import { initModelSearch } from "./pricing.js";

document.documentElement.classList.add("js");

initNav(document);
initCodeTabs(document);
initCopyButtons(document);
initModelSearch(document);
