// The dashboard's entry: sign-in, the page router (#/map, #/vehicle/VIN, #/overview,
// #/alerts, #/dead-letters), the brand filter, and the one live stream of the tab.
import "maplibre-gl/dist/maplibre-gl.css";
import "uplot/dist/uPlot.min.css";
import "@fontsource/noto-sans/latin-400.css";
import "@fontsource/noto-sans/latin-ext-400.css";
import "@fontsource/noto-sans/latin-700.css";
import "./app.css";
import { api, onAuthFailure } from "./api.js";
import { fleet } from "./fleet.js";
import { session } from "./session.js";
import { connect, counters, disconnect, onStreamState } from "./stream.js";
import { fill, h } from "./ui.js";
import { alertsView } from "./views/alerts.js";
import { deadLettersView } from "./views/deadletters.js";
import { mapView } from "./views/mapview.js";
import { overviewView } from "./views/overview.js";
import { signInView } from "./views/signin.js";
import { vehicleView } from "./views/vehicle.js";

const ROUTES = [
  [/^#\/map$/, mapView, "map"],
  [/^#\/vehicle\/([A-Za-z0-9]+)$/, vehicleView, "map"],
  [/^#\/overview$/, overviewView, "overview"],
  [/^#\/alerts$/, alertsView, "alerts"],
  [/^#\/dead-letters$/, deadLettersView, "dead-letters"],
];

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");
const banner = document.getElementById("banner");
let unmount = () => {};
let signedIn = false;

// For tests and the benchmark: the live objects of the page (read-only use).
const debug = { fleet, session, counters, map: null, layer: null, mapReady: false, trackMap: null, ready: false };
window.autocloud = debug;
const expose = (parts) => Object.assign(debug, parts);

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  if (!signedIn) return;
  unmount();
  const hash = location.hash || "#/map";
  for (const [pattern, view, nav] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const a of topbar.querySelectorAll("[data-nav]")) {
      if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    unmount = view(main, { params: match.slice(1), navigate, expose }) || (() => {});
    main.focus({ preventScroll: true });
    return;
  }
  navigate("#/map");
}

function showBanner(text) {
  banner.hidden = !text;
  banner.textContent = text || "";
}

async function start(token, brands) {
  session.token = token;
  session.brands = brands;
  session.groupWide = brands.length > 1;
  if (session.brand && !brands.some((b) => b.id === session.brand)) session.brand = "";
  setupBrandFilter();
  document.getElementById("who").textContent = session.groupWide ? "group · all brands" : `brand · ${brands[0]?.name || "none"}`;
  topbar.hidden = false;
  signedIn = true;
  fleet.follow();
  connect();
  // The page (and its map) is built while the fleet loads: the map's setup and the
  // snapshot's download overlap, and the vehicles appear as soon as both are in.
  const loading = reloadFleet();
  route();
  await loading;
}

async function reloadFleet() {
  try {
    await fleet.load();
    debug.ready = true;
    showBanner("");
  } catch (err) {
    showBanner(`The fleet could not be loaded: ${err.message}`);
  }
}

function setupBrandFilter() {
  const label = document.getElementById("brand-filter-label");
  const sel = document.getElementById("brand-filter");
  label.hidden = !session.groupWide;
  fill(sel, h("option", { value: "" }, "All brands"), session.brands.map((b) => h("option", { value: b.id, selected: b.id === session.brand }, b.name)));
  sel.onchange = async () => {
    session.brand = sel.value;
    connect();
    await reloadFleet();
    route();
  };
}

function signOut(message) {
  signedIn = false;
  unmount();
  unmount = () => {};
  disconnect();
  live = "never";
  fleet.stop();
  fleet.vehicles.clear();
  fleet.loaded = false;
  session.clear();
  topbar.hidden = true;
  showBanner("");
  signInView(main, { message, onSignedIn: start });
}

onAuthFailure(() => signOut("Your token is no longer accepted (expired, revoked or unknown). Sign in again with a valid token."));
document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);

// The stream was live, then lost: when it is back, reload the fleet to catch up on what was
// missed (not on the first connection: the sign-in loads the fleet itself).
let live = "never";
onStreamState((state) => {
  const el = document.getElementById("live-state");
  const words = { live: "● live", connecting: "connecting…", reconnecting: "reconnecting…", closed: "not live" };
  el.textContent = words[state] || state;
  el.className = `live ${state}`;
  if (state === "live") {
    if (live === "lost" && signedIn) reloadFleet();
    live = "yes";
  } else if ((state === "reconnecting" || state === "closed") && live === "yes") {
    live = "lost";
  }
});

if (session.token) {
  api("/v1/brands")
    .then((brands) => start(session.token, brands.items))
    .catch((err) => { if (err.status !== 401) signOut(`Signing in failed: ${err.message}`); });
} else {
  signOut();
}
