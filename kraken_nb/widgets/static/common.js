// Shared helpers for the kraken_nb widgets (prepended to each widget's module).
// Data never goes through innerHTML: every text is set with textContent.

const KN_UP = "#16c784";
const KN_DOWN = "#ea3943";

/** Create an element with optional class names and text. */
function knEl(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

const knFormatters = new Map();

/** Format a number with fixed decimals and thousands separators; "—" when missing. */
function knFixed(value, decimals) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const d = Math.max(0, Math.min(12, decimals ?? 2));
  let formatter = knFormatters.get(d);
  if (!formatter) {
    formatter = new Intl.NumberFormat("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
    knFormatters.set(d, formatter);
  }
  return formatter.format(value);
}

/** Format a quantity compactly (1.23K, 4.5M) with at most `decimals` decimals below 1,000. */
function knCompact(value, decimals) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const abs = Math.abs(value);
  const units = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]];
  for (const [size, suffix] of units) {
    if (abs >= size) return knFixed(value / size, 2) + suffix;
  }
  const d = abs >= 100 ? 2 : Math.min(decimals ?? 4, abs >= 1 ? 4 : 6);
  return knFixed(value, d);
}

/** A signed percentage such as "+1.25%". */
function knPercent(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return (value > 0 ? "+" : "") + knFixed(value, 2) + "%";
}

/** HH:MM:SS (local time) of a millisecond timestamp. */
function knClock(ms, withMillis) {
  const date = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const text = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return withMillis ? `${text}.${pad(date.getMilliseconds(), 3)}` : text;
}

/** The bytes of a buffer received with a custom message (DataView, ArrayBuffer or typed array). */
function knBytes(buffer) {
  if (buffer instanceof ArrayBuffer) return new Uint8Array(buffer);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** A Float32Array copy of a received buffer (copied, so alignment never matters). */
function knFloat32(buffer) {
  const bytes = knBytes(buffer);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Float32Array(copy.buffer, 0, Math.floor(bytes.length / 4));
}

/** A CSS-safe suffix for a status text ("book invalid" -> "book-invalid"). */
function knSlug(text) {
  return String(text || "unknown").toLowerCase().replace(/[^a-z0-9]+/g, "-");
}

/** A status pill bound to the model's `status` and `status_detail` traits; returns [element, dispose]. */
function knStatus(model) {
  const pill = knEl("span", "kn-status");
  const dot = knEl("span", "kn-status-dot");
  const label = knEl("span", "kn-status-label");
  const detail = knEl("span", "kn-status-detail");
  pill.append(dot, label, detail);
  const update = () => {
    const status = model.get("status") || "connecting";
    const why = model.get("status_detail") || "";
    pill.className = "kn-status kn-status--" + knSlug(status);
    label.textContent = status;
    detail.textContent = why;  // the server's text: never HTML
    detail.hidden = !why;
    pill.title = "connection: " + status + (why ? " (" + why + ")" : "");
  };
  update();
  model.on("change:status", update);
  model.on("change:status_detail", update);
  return [
    pill,
    () => {
      model.off("change:status", update);
      model.off("change:status_detail", update);
    },
  ];
}

/** Restart a one-shot CSS animation class on `node`. */
function knFlash(node, className) {
  node.classList.remove("kn-flash-up", "kn-flash-down", "kn-flash-neutral");
  void node.offsetWidth;
  node.classList.add(className);
}

/** Listen to custom messages; returns a dispose function. */
function knOnMessage(model, handler) {
  const listener = (content, buffers) => {
    if (content && typeof content === "object") handler(content, buffers || []);
  };
  model.on("msg:custom", listener);
  return () => model.off("msg:custom", listener);
}
