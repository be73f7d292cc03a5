// The operator's session: the pasted API token (sessionStorage: gone when the tab closes),
// the brands it can see, and the brand filter a group admin chose.

const TOKEN_KEY = "autocloud.token";
const BRAND_KEY = "autocloud.brand";

export const session = {
  brands: [], // [{id, name}] the token can see
  groupWide: false, // true when the token sees every brand (a group token)
  listeners: new Set(),

  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  /** The brand filter ("" = all brands the token can see). */
  get brand() {
    return sessionStorage.getItem(BRAND_KEY) || "";
  },
  set brand(value) {
    if (value) sessionStorage.setItem(BRAND_KEY, value);
    else sessionStorage.removeItem(BRAND_KEY);
    for (const fn of this.listeners) fn(value);
  },
  onBrandChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  },
  brandName(id) {
    return this.brands.find((b) => b.id === id)?.name || id;
  },
  clear() {
    this.token = null;
    sessionStorage.removeItem(BRAND_KEY);
    this.brands = [];
    this.groupWide = false;
  },
};
