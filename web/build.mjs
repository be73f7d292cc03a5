// Builds the dashboard into web/dist: one ES module bundle (app.js), its CSS, the fonts,
// MapLibre's worker and index.html. Everything comes from node_modules: nothing is loaded
// from the internet at run time. `node build.mjs --watch` rebuilds on change.
import { build, context } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const assets = join(dist, "assets");

const options = {
  entryPoints: { app: join(here, "src", "main.js") },
  bundle: true,
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  outdir: assets,
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  loader: { ".woff2": "file", ".woff": "file" },
  assetNames: "[name]-[hash]",
  logLevel: "warning",
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
copyFileSync(join(here, "src", "index.html"), join(dist, "index.html"));
// MapLibre runs its tile and cluster work in a web worker loaded from a file of its own.
copyFileSync(
  join(here, "node_modules", "maplibre-gl", "dist", "maplibre-gl-worker.mjs"),
  join(assets, "maplibre-gl-worker.mjs"),
);
if (process.argv.includes("--watch")) {
  const ctx = await context(options);
  await ctx.watch();
  console.log("watching web/src for changes");
} else {
  await build(options);
}
