// Bundles the front end into ../AiGate.Web/wwwroot/dist (git-ignored build output).
//
//   npm run build    one minified build: dist/app.css and dist/app.js, no source maps
//   npm run watch    rebuilds on change, with external source maps, until stopped
//
// Only files under wwwroot-src are read (the Dockerfile's front-end stage holds nothing else).
// The output goes to a strict Content-Security-Policy (no inline script or style), so everything
// is emitted as plain files and nothing is injected at run time.
import * as esbuild from "esbuild";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(here, "../AiGate.Web/wwwroot/dist");
const watch = process.argv.includes("--watch");

// Browsers from roughly the last three years; esbuild lowers newer syntax (CSS nesting included).
const target = ["chrome111", "edge111", "firefox114", "safari16.4"];

/** @type {esbuild.BuildOptions[]} */
const builds = [
  { entryPoints: [path.join(here, "src/app.css")], outfile: path.join(outDir, "app.css") },
  { entryPoints: [path.join(here, "src/app.js")], outfile: path.join(outDir, "app.js"), format: "iife" },
].map((options) => ({
  ...options,
  bundle: true,
  minify: !watch,
  sourcemap: watch ? "linked" : false,
  legalComments: "none",
  target,
  logLevel: "info",
  absWorkingDir: here,
}));

if (watch) {
  const contexts = await Promise.all(builds.map((options) => esbuild.context(options)));
  await Promise.all(contexts.map((context) => context.watch()));
  console.log(`watching src/ -> ${path.relative(here, outDir)}`);
} else {
  // Maps left behind by a watch session would otherwise be served next to the minified files.
  for (const map of ["app.css.map", "app.js.map"]) rmSync(path.join(outDir, map), { force: true });
  await Promise.all(builds.map((options) => esbuild.build(options)));
}
