// TradeTape view: newest-first trades plus a running buy/sell volume summary.
// Entries arrive as [time_ms, side, price, qty, trade_id], oldest first.

function knTapeRow(entry, model) {
  const [t, side, price, qty] = entry;
  const tr = knEl("tr", "kn-tp-row " + (side === "buy" ? "kn-tp-buy" : "kn-tp-sell"));
  tr.append(
    knEl("td", "kn-num kn-tp-time", knClock(t, false)),
    knEl("td", "kn-num kn-tp-price", knFixed(price, model.get("price_precision"))),
    knEl("td", "kn-num kn-tp-qty", knFixed(qty, model.get("qty_precision"))),
    knEl("td", "kn-tp-side", side === "buy" ? "B" : "S"),
  );
  tr.dataset.tradeId = String(entry[4]);
  return tr;
}

export default {
  render({ model, el }) {
    const root = knEl("div", "kn-root kraken-tape");
    const header = knEl("div", "kn-header");
    const [status, disposeStatus] = knStatus(model);
    const title = knEl("span", "kn-title");
    header.append(title, knEl("span", "kn-subtitle", "Trades"), knEl("span", "kn-spacer"), status);

    const summary = knEl("div", "kn-tp-summary");
    const buyText = knEl("span", "kn-num kn-up kn-tp-buyvol");
    const sellText = knEl("span", "kn-num kn-down kn-tp-sellvol");
    const bar = knEl("div", "kn-tp-bar");
    const barBuy = knEl("div", "kn-tp-bar-buy");
    bar.append(barBuy);
    const buyBox = knEl("div", "kn-tp-sum-side");
    buyBox.append(knEl("span", "kn-muted", "Buy "), buyText);
    const sellBox = knEl("div", "kn-tp-sum-side kn-tp-sum-right");
    sellBox.append(knEl("span", "kn-muted", "Sell "), sellText);
    const line = knEl("div", "kn-tp-sum-line");
    line.append(buyBox, sellBox);
    summary.append(line, bar);

    const scroller = knEl("div", "kn-tp-scroll");
    const table = knEl("table", "kn-tp-table");
    const thead = knEl("thead");
    const headRow = knEl("tr");
    headRow.append(
      knEl("th", "kn-tp-time", "Time"),
      knEl("th", "kn-num", "Price"),
      knEl("th", "kn-num", "Qty"),
      knEl("th", "", ""),
    );
    thead.append(headRow);
    const tbody = knEl("tbody");
    table.append(thead, tbody);
    scroller.append(table);
    root.append(header, summary, scroller);
    el.append(root);

    let lastId = -Infinity;
    const paintTitle = () => {
      title.textContent = model.get("symbol");
    };
    const paintSummary = () => {
      const s = model.get("summary") || {};
      const qp = model.get("qty_precision");
      buyText.textContent = `${knCompact(s.buy_qty, qp)} (${s.buy_count ?? 0})`;
      sellText.textContent = `${knCompact(s.sell_qty, qp)} (${s.sell_count ?? 0})`;
      const total = (s.buy_qty || 0) + (s.sell_qty || 0);
      barBuy.style.width = total > 0 ? ((100 * (s.buy_qty || 0)) / total).toFixed(1) + "%" : "50%";
    };
    const trim = () => {
      const limit = model.get("rows") || 50;
      while (tbody.rows.length > limit) tbody.deleteRow(tbody.rows.length - 1);
    };
    const prepend = (entries, fresh) => {
      const fragment = document.createDocumentFragment();
      for (let i = entries.length - 1; i >= 0; i--) {
        const entry = entries[i];
        if (entry[4] <= lastId) continue;
        const tr = knTapeRow(entry, model);
        if (fresh) tr.classList.add("kn-tp-new");
        fragment.append(tr);
      }
      for (const entry of entries) lastId = Math.max(lastId, entry[4]);
      tbody.insertBefore(fragment, tbody.firstChild);
      trim();
    };
    const disposeMessages = knOnMessage(model, (content) => {
      if (content.type === "snapshot") {
        tbody.replaceChildren();
        lastId = -Infinity;
        prepend(content.trades || [], false);
      } else if (content.type === "trades") {
        prepend(content.trades || [], true);
      }
    });
    paintTitle();
    paintSummary();
    model.on("change:summary", paintSummary);
    model.on("change:symbol", paintTitle);
    model.on("change:rows", trim);
    model.send({ type: "ready" });
    return () => {
      disposeMessages();
      disposeStatus();
      model.off("change:summary", paintSummary);
      model.off("change:symbol", paintTitle);
      model.off("change:rows", trim);
    };
  },
};
