// DepthHeatmap view: canvas heatmap of resting qty (time × price) plus the cumulative depth curve.
// Columns arrive as {t, best_bid, best_ask, mid} with two float32 buffers (bid, ask qty per price row).

const KN_AXIS_W = 70;
const KN_TIME_H = 20;
const KN_BG = [13, 17, 23];
const KN_BID_RAMP = [KN_BG, [10, 92, 70], [22, 199, 132], [200, 255, 228]];
const KN_ASK_RAMP = [KN_BG, [110, 24, 36], [234, 57, 67], [255, 214, 200]];

function knRamp(ramp, x) {
  const v = Math.max(0, Math.min(1, x)) * (ramp.length - 1);
  const i = Math.min(ramp.length - 2, Math.floor(v));
  const f = v - i;
  const a = ramp[i];
  const b = ramp[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** A robust colour scale: the 95th percentile of the non-zero cells. */
function knScale(columns) {
  const values = [];
  for (const column of columns) {
    for (const q of column.bids) if (q > 0) values.push(q);
    for (const q of column.asks) if (q > 0) values.push(q);
  }
  if (!values.length) return 1;
  const sorted = Float32Array.from(values).sort();
  return sorted[Math.floor(0.95 * (sorted.length - 1))] || sorted[sorted.length - 1] || 1;
}

function knShift(values, rows) {
  const out = new Float32Array(values.length);
  const n = values.length;
  if (Math.abs(rows) < n) {
    if (rows >= 0) out.set(values.subarray(rows), 0);
    else out.set(values.subarray(0, n + rows), -rows);
  }
  return out;
}

export default {
  render({ model, el }) {
    const root = knEl("div", "kn-root kraken-depth");
    const header = knEl("div", "kn-header");
    const [status, disposeStatus] = knStatus(model);
    const title = knEl("span", "kn-title");
    const sub = knEl("span", "kn-subtitle");
    const bidText = knEl("span", "kn-num kn-up kn-dp-bid");
    const askText = knEl("span", "kn-num kn-down kn-dp-ask");
    const spreadText = knEl("span", "kn-num kn-muted kn-dp-spread");
    const hoverText = knEl("span", "kn-num kn-muted kn-dp-hover");
    header.append(title, sub, bidText, askText, spreadText, knEl("span", "kn-spacer"), hoverText, status);

    const body = knEl("div", "kn-dp-body");
    const heat = knEl("canvas", "kn-dp-heat");
    const curve = knEl("canvas", "kn-dp-curve");
    body.append(heat, curve);
    root.append(header, body);
    el.append(root);

    const offscreen = document.createElement("canvas");
    let columns = [];
    let priceLo = 0;
    let step = 0;
    let rows = model.get("price_rows") || 120;
    let pending = false;
    let disposed = false;
    let hover = null;

    const pp = () => model.get("price_precision");
    const qp = () => model.get("qty_precision");

    const paintHeader = () => {
      title.textContent = model.get("symbol");
      sub.textContent = `depth ${model.get("depth")} · order book`;
      const c = columns[columns.length - 1];
      if (!c) return;
      bidText.textContent = "bid " + knFixed(c.best_bid, pp());
      askText.textContent = "ask " + knFixed(c.best_ask, pp());
      const spread = c.best_ask - c.best_bid;
      spreadText.textContent = "spread " + knFixed(spread, pp());
    };

    const fit = (canvas) => {
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(1, canvas.clientWidth);
      const h = Math.max(1, canvas.clientHeight);
      if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
        canvas.width = Math.round(w * dpr);
        canvas.height = Math.round(h * dpr);
      }
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      return [ctx, w, h];
    };

    const drawHeat = () => {
      const [ctx, w, h] = fit(heat);
      const plotW = w - KN_AXIS_W;
      const plotH = h - KN_TIME_H;
      ctx.fillStyle = "#0d1117";
      ctx.fillRect(0, 0, w, h);
      if (!columns.length || !(step > 0)) {
        ctx.fillStyle = "#7d8a99";
        ctx.font = "12px Inter, system-ui, sans-serif";
        ctx.fillText("waiting for a valid book…", 12, 24);
        return;
      }
      const capacity = model.get("columns") || 200;
      const n = columns.length;
      const scale = knScale(columns);
      if (offscreen.width !== capacity || offscreen.height !== rows) {
        offscreen.width = capacity;
        offscreen.height = rows;
      }
      const octx = offscreen.getContext("2d");
      const image = octx.createImageData(capacity, rows);
      const px = image.data;
      for (let i = 0; i < px.length; i += 4) {
        px[i] = KN_BG[0];
        px[i + 1] = KN_BG[1];
        px[i + 2] = KN_BG[2];
        px[i + 3] = 255;
      }
      for (let i = 0; i < n; i++) {
        const column = columns[i];
        const x = capacity - n + i;
        for (let r = 0; r < rows; r++) {
          const b = column.bids[r] || 0;
          const a = column.asks[r] || 0;
          if (b <= 0 && a <= 0) continue;
          const colour = b >= a ? knRamp(KN_BID_RAMP, Math.sqrt(b / scale)) : knRamp(KN_ASK_RAMP, Math.sqrt(a / scale));
          const o = ((rows - 1 - r) * capacity + x) * 4;
          px[o] = colour[0];
          px[o + 1] = colour[1];
          px[o + 2] = colour[2];
        }
      }
      octx.putImageData(image, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(offscreen, 0, 0, capacity, rows, 0, 0, plotW, plotH);

      const span = step * rows;
      const yOf = (price) => plotH - ((price - priceLo) / span) * plotH;
      const xOf = (i) => ((capacity - n + i + 0.5) / capacity) * plotW;
      const line = (key, colour, dash) => {
        ctx.beginPath();
        ctx.setLineDash(dash);
        ctx.strokeStyle = colour;
        ctx.lineWidth = 1.25;
        let started = false;
        for (let i = 0; i < n; i++) {
          const v = columns[i][key];
          if (!Number.isFinite(v)) continue;
          const y = yOf(v);
          if (started) ctx.lineTo(xOf(i), y);
          else ctx.moveTo(xOf(i), y);
          started = true;
        }
        ctx.stroke();
        ctx.setLineDash([]);
      };
      ctx.save();
      ctx.beginPath();
      ctx.rect(0, 0, plotW, plotH);
      ctx.clip();
      line("best_bid", KN_UP, []);
      line("best_ask", KN_DOWN, []);
      line("mid", "rgba(240,244,248,0.7)", [3, 3]);
      ctx.restore();

      // Price axis (right) and time axis (bottom).
      ctx.fillStyle = "#0d1117";
      ctx.fillRect(plotW, 0, KN_AXIS_W, h);
      ctx.fillRect(0, plotH, w, KN_TIME_H);
      ctx.strokeStyle = "#222c38";
      ctx.beginPath();
      ctx.moveTo(plotW + 0.5, 0);
      ctx.lineTo(plotW + 0.5, plotH);
      ctx.lineTo(0, plotH + 0.5);
      ctx.stroke();
      ctx.font = "10.5px JetBrains Mono, Menlo, Consolas, monospace";
      ctx.fillStyle = "#7d8a99";
      ctx.textBaseline = "middle";
      const wanted = Math.max(2, Math.floor(plotH / 42));
      const rawStep = span / wanted;
      const magnitude = Math.pow(10, Math.floor(Math.log10(rawStep)));
      const labelStep = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((v) => v >= rawStep) || rawStep;
      const labelDecimals = Math.max(0, Math.min(pp(), -Math.floor(Math.log10(labelStep) - 1e-9)));
      for (let price = Math.ceil(priceLo / labelStep) * labelStep; price <= priceLo + span; price += labelStep) {
        const y = yOf(price);
        if (y < 6 || y > plotH - 4) continue;
        ctx.fillText(knFixed(price, labelDecimals), plotW + 8, y);
        ctx.fillRect(plotW, y, 4, 1);
      }
      const lastColumn = columns[n - 1];
      if (Number.isFinite(lastColumn.mid)) {
        const y = Math.max(8, Math.min(plotH - 8, yOf(lastColumn.mid)));
        ctx.fillStyle = "#f0f4f8";
        ctx.fillRect(plotW + 1, y - 8, KN_AXIS_W - 1, 16);
        ctx.fillStyle = "#0d1117";
        ctx.fillText(knFixed(lastColumn.mid, pp()), plotW + 6, y);
      }
      ctx.fillStyle = "#7d8a99";
      ctx.textBaseline = "alphabetic";
      const labels = Math.max(2, Math.floor(plotW / 120));
      for (let k = 0; k < labels; k++) {
        const slot = Math.round(((capacity - 1) * (k + 0.5)) / labels);
        const i = slot - (capacity - n);
        if (!columns[i]) continue;
        const x = xOf(i);
        ctx.fillText(knClock(columns[i].t, false), Math.max(2, Math.min(x - 24, plotW - 54)), h - 6);
      }
    };

    const drawCurve = () => {
      const [ctx, w, h] = fit(curve);
      const plotH = h - KN_TIME_H;
      ctx.fillStyle = "#0d1117";
      ctx.fillRect(0, 0, w, h);
      const column = columns[columns.length - 1];
      if (!column || !(step > 0)) return;
      const cumBid = new Float64Array(rows);
      const cumAsk = new Float64Array(rows);
      let sum = 0;
      for (let r = rows - 1; r >= 0; r--) cumBid[r] = sum += column.bids[r] || 0;
      sum = 0;
      for (let r = 0; r < rows; r++) cumAsk[r] = sum += column.asks[r] || 0;
      const top = Math.max(cumBid[0], cumAsk[rows - 1], 1e-12);
      const rowH = plotH / rows;
      const area = (cum, fill, stroke, active) => {
        ctx.beginPath();
        ctx.moveTo(0, plotH);
        for (let r = 0; r < rows; r++) {
          const x = active(r) ? (cum[r] / top) * (w - 4) : 0;
          const y = plotH - (r + 1) * rowH;
          ctx.lineTo(x, plotH - r * rowH);
          ctx.lineTo(x, y);
        }
        ctx.lineTo(0, 0);
        ctx.closePath();
        ctx.fillStyle = fill;
        ctx.fill();
        ctx.strokeStyle = stroke;
        ctx.stroke();
      };
      let topBid = -1;
      let lowAsk = rows;
      for (let r = 0; r < rows; r++) if ((column.bids[r] || 0) > 0) topBid = r;
      for (let r = rows - 1; r >= 0; r--) if ((column.asks[r] || 0) > 0) lowAsk = r;
      area(cumBid, "rgba(22,199,132,0.2)", KN_UP, (r) => r <= topBid);
      area(cumAsk, "rgba(234,57,67,0.2)", KN_DOWN, (r) => r >= lowAsk);
      ctx.strokeStyle = "#222c38";
      ctx.beginPath();
      ctx.moveTo(0, plotH + 0.5);
      ctx.lineTo(w, plotH + 0.5);
      ctx.stroke();
      ctx.fillStyle = "#7d8a99";
      ctx.font = "10.5px JetBrains Mono, Menlo, Consolas, monospace";
      ctx.fillText("Σ " + knCompact(top, qp()), 4, h - 6);
    };

    const draw = () => {
      pending = false;
      if (disposed) return;
      drawHeat();
      drawCurve();
      paintHeader();
      paintHover();
    };
    const schedule = () => {
      if (!pending) {
        pending = true;
        requestAnimationFrame(draw);
      }
    };

    const paintHover = () => {
      if (!hover || !columns.length || !(step > 0)) {
        hoverText.textContent = "";
        return;
      }
      const capacity = model.get("columns") || 200;
      const plotW = heat.clientWidth - KN_AXIS_W;
      const plotH = heat.clientHeight - KN_TIME_H;
      if (hover.x > plotW || hover.y > plotH) {
        hoverText.textContent = "";
        return;
      }
      const i = Math.floor((hover.x / plotW) * capacity) - (capacity - columns.length);
      const r = Math.floor(((plotH - hover.y) / plotH) * rows);
      const column = columns[i];
      if (!column || r < 0 || r >= rows) {
        hoverText.textContent = "";
        return;
      }
      const price = priceLo + r * step;
      const b = column.bids[r] || 0;
      const a = column.asks[r] || 0;
      const side = b >= a ? `bid ${knFixed(b, qp())}` : `ask ${knFixed(a, qp())}`;
      hoverText.textContent = `${knClock(column.t, true)}  ${knFixed(price, pp())}  ${b > 0 || a > 0 ? side : "—"}`;
    };
    const onMove = (event) => {
      const rect = heat.getBoundingClientRect();
      hover = { x: event.clientX - rect.left, y: event.clientY - rect.top };
      paintHover();
    };
    const onLeave = () => {
      hover = null;
      paintHover();
    };
    heat.addEventListener("mousemove", onMove);
    heat.addEventListener("mouseleave", onLeave);

    const disposeMessages = knOnMessage(model, (content, buffers) => {
      const capacity = model.get("columns") || 200;
      if (content.type === "snapshot") {
        priceLo = content.price_lo;
        step = content.price_step;
        rows = content.price_rows;
        const bids = knFloat32(buffers[0]);
        const asks = knFloat32(buffers[1]);
        columns = (content.columns || []).map((header, i) => ({
          ...header,
          bids: bids.slice(i * rows, (i + 1) * rows),
          asks: asks.slice(i * rows, (i + 1) * rows),
        }));
      } else if (content.type === "column") {
        if (!(step > 0)) {
          priceLo = model.get("price_lo");
          step = model.get("price_step");
          rows = model.get("price_rows");
        }
        columns.push({ ...content, bids: knFloat32(buffers[0]), asks: knFloat32(buffers[1]) });
        if (columns.length > capacity) columns = columns.slice(columns.length - capacity);
      } else if (content.type === "recentre") {
        priceLo = content.price_lo;
        for (const column of columns) {
          column.bids = knShift(column.bids, content.shift);
          column.asks = knShift(column.asks, content.shift);
        }
      } else {
        return;
      }
      schedule();
    });

    const observer = new ResizeObserver(schedule);
    observer.observe(body);
    model.on("change:symbol", paintHeader);
    paintHeader();
    schedule();
    model.send({ type: "ready" });
    return () => {
      disposed = true;
      observer.disconnect();
      disposeMessages();
      disposeStatus();
      heat.removeEventListener("mousemove", onMove);
      heat.removeEventListener("mouseleave", onLeave);
      model.off("change:symbol", paintHeader);
    };
  },
};
