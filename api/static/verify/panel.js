// The receipt page's verification panel (docs/architecture.md §9.3).  It fetches the JSON receipt,
// runs the steps of receipt.js one at a time and shows one line per step.  The panel is the element
// #verification (data-receipt, data-log-key, data-lang) holding an empty <ol data-steps>; its
// data-status goes from "running" to "verified" (every step ok) or "failed" (data-failed-step
// names the first step that failed).  The log key is pinned on first use in localStorage; a
// different key from the site later shows [data-warning="key-changed"], and the checks go on
// against the pinned key until the donor pastes a published one.
// With data-tiles (a tile base URL, "" for this site) the panel also proves the gift and what it
// paid for from the log's C2SP tiles against its current checkpoint (step "tiles", tilecheck.js).
// A witness policy (witness keys and a quorum) comes only from the donor: the page's link
// fragment (#witness=<vkey>&witness=<vkey>&quorum=2, each value percent-encoded) or the form
// [data-policy-form], remembered in localStorage; then step "witnesses" fails unless a quorum of
// those witnesses cosigned the checkpoint.  [data-policy] says which policy applies and where it
// came from; the site never supplies witness keys.
import { sha256, toHex } from "./encoding.js";
import { ed25519Engine, parseVerifierKey } from "./note.js";
import { describePolicy, witnessPolicy } from "./cosignature.js";
import { checkReceipt, formatAmount } from "./receipt.js";
import { STRINGS } from "./strings.js";
import { checkCurrent } from "./tilecheck.js";

const STORE = "luodi.pinned-log-key";
const POLICY_STORE = "luodi.witness-policy";

/** The witness policy in the link's fragment: {witnesses: [vkey], quorum: number|null}, or null. */
function fragmentPolicy() {
  const witnesses = [];
  let quorum = null;
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    const at = part.indexOf("=");
    if (at < 0) continue;
    const [k, v] = [part.slice(0, at), decodeURIComponent(part.slice(at + 1))];
    if (k === "witness") witnesses.push(v);
    if (k === "quorum") quorum = v === "" ? null : Number(v);
  }
  return witnesses.length || quorum !== null ? { witnesses, quorum } : null;
}

function storedPolicy() {
  try {
    const p = JSON.parse(localStorage.getItem(POLICY_STORE) ?? "null");
    return p && Array.isArray(p.witnesses) ? p : null;
  } catch {
    return null;
  }
}

function storePolicy(p) {
  try {
    if (p) localStorage.setItem(POLICY_STORE, JSON.stringify(p));
    else localStorage.removeItem(POLICY_STORE);
  } catch {
    /* storage disabled */
  }
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function remembered() {
  try {
    return localStorage.getItem(STORE);
  } catch {
    return null; // storage disabled: pin for this visit only
  }
}

function remember(key) {
  try {
    localStorage.setItem(STORE, key);
  } catch {
    /* storage disabled */
  }
}

async function fingerprint(publicKey) {
  return toHex((await sha256(publicKey)).slice(0, 16)).match(/.{4}/g).join(" ");
}

const grouped = (text) => text.replace(/^(\d+)/, (w) => w.replace(/\B(?=(\d{3})+$)/g, ","));

function line(result, s) {
  const [kind] = result.step.split("-");
  const [ok, bad] = s.steps[kind];
  const facts = { ...result.facts, seq: result.facts.seq ?? result.step.slice(kind.length + 1) };
  if (kind === "amounts" && result.ok) {
    for (const n of ["amount", "spent", "refunded", "unspent"]) {
      facts[n] = { currency: facts.currency, text: grouped(formatAmount(facts[n], facts.currency)) };
    }
  }
  if (result.ok === null) return s.skipped[kind];
  if (result.ok) return ok(facts, s);
  return `${typeof bad === "function" ? bad(facts) : bad}: ${result.detail}`;
}

class Panel {
  constructor(section) {
    this.section = section;
    this.s = STRINGS[section.dataset.lang === "en" ? "en" : "zh-CN"];
    this.receipt = section.dataset.receipt;
    this.served = section.dataset.logKey;
    this.steps = section.querySelector("[data-steps]") ?? section.appendChild(el("ol", { "data-steps": "" }));
    this.summary = el("p", { "data-summary": "", class: "verify-summary", role: "status" });
    this.warning = el("p", { "data-warning": "key-changed", class: "verify-warning", role: "alert", hidden: "" });
    this.note = el("p", { "data-note": "", class: "verify-note", hidden: "" });
    const key = el("dl", { class: "verify-key" });
    this.keyText = el("code", { "data-pinned-key": "" });
    this.fingerprint = el("code", { "data-fingerprint": "" });
    key.append(el("dt", {}, this.s.pinnedKey), el("dd").appendChild(this.keyText).parentNode,
      el("dt", {}, this.s.fingerprint), el("dd").appendChild(this.fingerprint).parentNode);
    this.form = el("form", { "data-key-form": "", class: "verify-paste" });
    const label = el("label", { for: "verify-key-input" }, this.s.pasteLabel);
    this.input = el("input", { id: "verify-key-input", name: "key", type: "text", autocomplete: "off", spellcheck: "false" });
    this.formError = el("p", { "data-paste-error": "", class: "verify-warning", hidden: "" }, this.s.badPaste);
    this.form.append(label, this.input, el("button", { type: "submit" }, this.s.pasteButton), this.formError);
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.paste(this.input.value.trim());
    });
    section.insertBefore(this.summary, this.steps);
    section.insertBefore(this.warning, this.summary);
    section.append(this.note, key, this.form, this.policyForm());
    this.tiles = section.dataset.tiles; // undefined: no check from tiles
    this.runs = 0;
  }

  policyForm() {
    this.policyText = el("p", { "data-policy": "", class: "verify-note" });
    const form = el("form", { "data-policy-form": "", class: "verify-paste" });
    this.policyKeys = el("textarea", { id: "verify-witnesses", name: "witnesses", rows: "3", spellcheck: "false" });
    this.policyQuorum = el("input", { id: "verify-quorum", name: "quorum", type: "number", min: "1", step: "1" });
    const clear = el("button", { type: "button", "data-policy-clear": "" }, this.s.policyClear);
    form.append(el("label", { for: "verify-witnesses" }, this.s.policyLabel), this.policyKeys,
      el("label", { for: "verify-quorum" }, this.s.quorumLabel), this.policyQuorum,
      el("button", { type: "submit" }, this.s.policyButton), clear);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const witnesses = this.policyKeys.value.split(/\s+/).filter(Boolean);
      const q = this.policyQuorum.value.trim();
      this.setPolicy(witnesses.length ? { witnesses, quorum: q ? Number(q) : null } : null, "form");
    });
    clear.addEventListener("click", () => this.setPolicy(null, "form"));
    const box = el("div", { class: "verify-policy" });
    box.append(this.policyText, form);
    return box;
  }

  setPolicy(raw, source) {
    storePolicy(raw);
    this.rawPolicy = raw;
    this.policySource = source;
    return this.run(this.pinned);
  }

  async policy() {
    const raw = this.rawPolicy;
    if (!raw) {
      this.policyText.textContent = this.s.policyNone;
      return {};
    }
    try {
      const policy = await witnessPolicy(raw.witnesses, raw.quorum ?? undefined);
      this.policyText.textContent = this.s.policyFrom(this.policySource, describePolicy(policy));
      return { policy };
    } catch (e) {
      this.policyText.textContent = this.s.policyFrom(this.policySource, "?");
      return { policyError: e.message };
    }
  }

  async paste(text) {
    try {
      await parseVerifierKey(text);
    } catch {
      this.formError.hidden = false;
      return;
    }
    this.formError.hidden = true;
    remember(text);
    await this.run(text);
  }

  async showKey(pinned) {
    this.keyText.textContent = pinned;
    try {
      this.fingerprint.textContent = await fingerprint((await parseVerifierKey(pinned)).publicKey);
    } catch (e) {
      this.fingerprint.textContent = e.message;
    }
    const changed = Boolean(this.served) && pinned !== this.served;
    this.warning.hidden = !changed;
    this.warning.textContent = changed ? this.s.keyChanged(pinned, this.served) : "";
  }

  finish(status, failedStep, text) {
    this.section.dataset.status = status;
    if (failedStep) this.section.dataset.failedStep = failedStep;
    else delete this.section.dataset.failedStep;
    this.summary.textContent = text;
  }

  async run(pinned) {
    this.pinned = pinned;
    const run = ++this.runs;
    this.section.dataset.run = String(run); // which run the status belongs to
    this.steps.replaceChildren();
    this.finish("running", null, this.s.running);
    await this.showKey(pinned);
    const engine = await ed25519Engine();
    if (!engine) {
      this.section.dataset.reason = "unsupported"; // this browser cannot verify at all
      return this.finish("failed", "checkpoint", this.s.noCrypto);
    }
    this.note.hidden = engine !== "fallback";
    this.note.textContent = engine === "fallback" ? this.s.fallback : "";
    let doc;
    try {
      const resp = await fetch(`/v1/receipts/${encodeURIComponent(this.receipt)}`, { headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      doc = await resp.json();
    } catch (e) {
      return run === this.runs && this.finish("failed", "entry", `${this.s.fetchFailed} ${e.message}`);
    }
    let failed = null;
    const policy = await this.policy();
    const current = checkCurrent(doc, pinned, { tiles: this.tiles, ...policy });
    for (const results of [checkReceipt(doc, this.receipt, pinned), current]) {
      for await (const result of results) {
        if (run !== this.runs) return; // a newer run (a pasted key, a policy) took over
        const status = result.ok === null ? "skipped" : result.ok ? "ok" : "failed";
        this.steps.append(el("li", { "data-step": result.step, "data-status": status, class: `verify-step verify-${status}` }, line(result, this.s)));
        failed ??= result.ok === false ? result.step : null;
      }
    }
    this.finish(failed ? "failed" : "verified", failed, failed ? this.s.failed(failed) : this.s.verified);
  }
}

const section = document.getElementById("verification");
if (section) {
  const panel = new Panel(section);
  const linked = fragmentPolicy();
  panel.rawPolicy = linked ?? storedPolicy();
  panel.policySource = linked ? "link" : "stored";
  if (linked) storePolicy(linked);
  let pinned = remembered();
  if (!pinned) {
    pinned = panel.served;
    if (pinned) remember(pinned);
  }
  panel.run(pinned ?? "");
}
