// TickerBoard view: one row per symbol; cells flash green/red when their value moves.

const KN_TICKER_COLUMNS = [
  { key: "symbol", label: "Pair", cls: "kn-tk-sym" },
  { key: "last", label: "Last", num: true, directional: true },
  { key: "change_pct", label: "24h %", num: true, directional: true },
  { key: "bid", label: "Bid", num: true, directional: true },
  { key: "ask", label: "Ask", num: true, directional: true },
  { key: "spread", label: "Spread", num: true },
  { key: "volume", label: "24h Vol", num: true },
  { key: "range", label: "24h Range", cls: "kn-tk-range-col" },
];

function knTickerText(key, row) {
  const pp = row.price_precision ?? 2;
  switch (key) {
    case "symbol":
      return row.symbol;
    case "change_pct":
      return knPercent(row.change_pct);
    case "volume":
      return knCompact(row.volume, row.qty_precision ?? 4);
    case "spread":
      return knFixed(row.spread, pp);
    default:
      return knFixed(row[key], pp);
  }
}

function knTickerRow(tbody) {
  const tr = knEl("tr", "kn-tk-row");
  const cells = {};
  for (const column of KN_TICKER_COLUMNS) {
    const td = knEl("td", column.num ? "kn-num" : column.cls || "");
    if (column.key === "range") {
      const bar = knEl("div", "kn-tk-range");
      const fill = knEl("div", "kn-tk-range-fill");
      const mark = knEl("div", "kn-tk-range-mark");
      bar.append(fill, mark);
      td.append(bar);
      cells.range = { td, fill, mark };
    } else {
      cells[column.key] = td;
    }
    tr.append(td);
  }
  tbody.append(tr);
  return { tr, cells, prev: {} };
}

function knTickerPaint(view, row) {
  const { cells, prev } = view;
  for (const column of KN_TICKER_COLUMNS) {
    if (column.key === "range") continue;
    const td = cells[column.key];
    const text = knTickerText(column.key, row);
    if (td.textContent !== text) {
      td.textContent = text;
      const before = prev[column.key];
      const now = row[column.key];
      if (column.num && Number.isFinite(before) && Number.isFinite(now) && before !== now) {
        const direction = now > before ? "kn-flash-up" : "kn-flash-down";
        knFlash(td, column.directional ? direction : "kn-flash-neutral");
      }
    }
  }
  const change = row.change_pct;
  cells.change_pct.classList.toggle("kn-up", Number.isFinite(change) && change > 0);
  cells.change_pct.classList.toggle("kn-down", Number.isFinite(change) && change < 0);
  if (Number.isFinite(prev.last) && Number.isFinite(row.last) && prev.last !== row.last) {
    cells.last.classList.toggle("kn-up", row.last > prev.last);
    cells.last.classList.toggle("kn-down", row.last < prev.last);
  }
  cells.bid.title = "bid qty " + knFixed(row.bid_qty, row.qty_precision ?? 8);
  cells.ask.title = "ask qty " + knFixed(row.ask_qty, row.qty_precision ?? 8);
  cells.bid.classList.add("kn-tk-bid");
  cells.ask.classList.add("kn-tk-ask");

  const { td, fill, mark } = cells.range;
  const { low, high, last } = row;
  if ([low, high, last].every(Number.isFinite) && high > low) {
    const where = Math.max(0, Math.min(1, (last - low) / (high - low)));
    fill.style.width = (where * 100).toFixed(1) + "%";
    mark.style.left = (where * 100).toFixed(1) + "%";
    td.title = `low ${knFixed(low, row.price_precision)} · high ${knFixed(high, row.price_precision)}`;
  }
  view.prev = { ...row };
}

export default {
  render({ model, el }) {
    const root = knEl("div", "kn-root kraken-ticker");
    const header = knEl("div", "kn-header");
    const [status, disposeStatus] = knStatus(model);
    header.append(knEl("span", "kn-title", "Markets"), knEl("span", "kn-subtitle", "Kraken spot · 24h"));
    header.append(knEl("span", "kn-spacer"), status);

    const table = knEl("table", "kn-tk-table");
    const thead = knEl("thead");
    const headRow = knEl("tr");
    for (const column of KN_TICKER_COLUMNS) {
      headRow.append(knEl("th", column.num ? "kn-num" : "", column.label));
    }
    thead.append(headRow);
    const tbody = knEl("tbody");
    table.append(thead, tbody);
    root.append(header, table);
    el.append(root);

    const views = new Map();
    const rows = new Map();
    const paintRow = (row) => {
      let view = views.get(row.symbol);
      if (!view) {
        view = knTickerRow(tbody);
        views.set(row.symbol, view);
      }
      knTickerPaint(view, row);
    };
    const disposeMessages = knOnMessage(model, (content) => {
      if (content.type === "snapshot") {
        rows.clear();
        views.clear();
        tbody.replaceChildren();
        for (const row of content.rows || []) {
          rows.set(row.symbol, row);
          paintRow(row);
        }
      } else if (content.type === "rows") {
        for (const change of content.rows || []) {
          const before = rows.get(change.symbol);
          if (!before) continue; // not in the snapshot: ignore
          const row = { ...before, ...change };
          rows.set(row.symbol, row);
          paintRow(row);
        }
      }
    });
    model.send({ type: "ready" });
    return () => {
      disposeMessages();
      disposeStatus();
    };
  },
};
