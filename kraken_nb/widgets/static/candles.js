// CandleChart view: plotly.js candlesticks + volume bars, fed with candle deltas.
// Candles arrive as [begin_ms, open, high, low, close, volume] and are upserted by begin time.

/** plotly.js, requested once per page from the kernel (the installed plotly package's bundle). */
function knPlotly(model) {
  if (globalThis.Plotly && typeof globalThis.Plotly.react === "function") {
    return Promise.resolve(globalThis.Plotly);
  }
  if (!globalThis.__krakenNbPlotly) {
    globalThis.__krakenNbPlotly = new Promise((resolve, reject) => {
      const dispose = knOnMessage(model, (content, buffers) => {
        if (content.type !== "plotly") return;
        dispose();
        try {
          const source = new TextDecoder().decode(knBytes(buffers[0]));
          const module = { exports: {} };
          new Function("module", "exports", source)(module, module.exports);
          const plotly = module.exports && module.exports.react ? module.exports : globalThis.Plotly;
          if (!plotly) throw new Error("plotly.js did not load");
          resolve(plotly);
        } catch (error) {
          globalThis.__krakenNbPlotly = undefined;
          reject(error);
        }
      });
      model.send({ type: "plotly" });
    });
  }
  return globalThis.__krakenNbPlotly;
}

const KN_CANDLE_LAYOUT = {
  paper_bgcolor: "#0d1117",
  plot_bgcolor: "#0d1117",
  font: { color: "#9aa7b5", size: 11, family: "Inter, Segoe UI, system-ui, sans-serif" },
  margin: { l: 8, r: 64, t: 6, b: 36 },
  showlegend: false,
  dragmode: "pan",
  uirevision: "keep",
  hovermode: "x unified",
  hoverlabel: { bgcolor: "#131a23", bordercolor: "#2a3543", font: { color: "#d5dde6" } },
  xaxis: {
    type: "date",
    anchor: "y2",
    rangeslider: { visible: false },
    gridcolor: "#18212c",
    linecolor: "#222c38",
    showspikes: true,
    spikecolor: "#5b6b7d",
    spikethickness: 1,
    spikedash: "dot",
    spikemode: "across",
  },
  yaxis: {
    domain: [0.24, 1],
    side: "right",
    gridcolor: "#18212c",
    zeroline: false,
    tickformat: "",
  },
  yaxis2: {
    domain: [0, 0.19],
    side: "right",
    gridcolor: "#18212c",
    zeroline: false,
    showticklabels: true,
    nticks: 3,
  },
};

export default {
  render({ model, el }) {
    const root = knEl("div", "kn-root kraken-candles");
    const header = knEl("div", "kn-header");
    const [status, disposeStatus] = knStatus(model);
    const title = knEl("span", "kn-title");
    const sub = knEl("span", "kn-subtitle");
    const ohlc = knEl("span", "kn-num kn-cd-ohlc");
    const last = knEl("span", "kn-num kn-cd-last");
    header.append(title, sub, ohlc, knEl("span", "kn-spacer"), last, status);
    const plot = knEl("div", "kn-cd-plot");
    const loading = knEl("div", "kn-cd-loading", "loading chart…");
    plot.append(loading);
    root.append(header, plot);
    el.append(root);

    /** @type {Array<Array<number>>} */
    let candles = [];
    let Plotly = null;
    let pending = false;
    let disposed = false;

    const upsert = (incoming) => {
      for (const candle of incoming) {
        const n = candles.length;
        if (n && candle[0] === candles[n - 1][0]) candles[n - 1] = candle;
        else if (!n || candle[0] > candles[n - 1][0]) candles.push(candle);
        else {
          const i = candles.findIndex((c) => c[0] >= candle[0]);
          if (candles[i][0] === candle[0]) candles[i] = candle;
          else candles.splice(i, 0, candle);
        }
      }
      const limit = model.get("window") || 200;
      if (candles.length > limit) candles = candles.slice(candles.length - limit);
    };

    const paintHeader = () => {
      title.textContent = model.get("symbol");
      sub.textContent = `${model.get("interval")}m · UTC`;
      const c = candles[candles.length - 1];
      const pp = model.get("price_precision");
      if (!c) return;
      ohlc.textContent = `O ${knFixed(c[1], pp)}  H ${knFixed(c[2], pp)}  L ${knFixed(c[3], pp)}  C ${knFixed(c[4], pp)}`;
      last.textContent = knFixed(c[4], pp);
      last.classList.toggle("kn-up", c[4] >= c[1]);
      last.classList.toggle("kn-down", c[4] < c[1]);
    };

    let userRange = null;
    let listening = false;
    const onRelayout = (event) => {
      if (!event) return;
      if (event["xaxis.autorange"]) userRange = null;
      else if (event["xaxis.range[0]"] !== undefined) userRange = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
      else if (Array.isArray(event["xaxis.range"])) userRange = event["xaxis.range"].slice();
    };

    const draw = () => {
      pending = false;
      if (disposed || !Plotly || !candles.length) return;
      const iv = (model.get("interval") || 1) * 60_000;
      const pp = model.get("price_precision");
      const n = candles.length;
      const lastCandle = candles[n - 1];
      // Empty slots one interval before and after fix the bar width at one interval, even for one candle.
      const x = [candles[0][0] - iv, ...candles.map((c) => c[0]), lastCandle[0] + iv];
      const pick = (k) => [null, ...candles.map((c) => c[k]), null];
      const up = candles.map((c) => c[4] >= c[1]);
      const data = [
        {
          type: "candlestick",
          x,
          open: pick(1),
          high: pick(2),
          low: pick(3),
          close: pick(4),
          increasing: { line: { color: KN_UP, width: 1 }, fillcolor: KN_UP },
          decreasing: { line: { color: KN_DOWN, width: 1 }, fillcolor: KN_DOWN },
          whiskerwidth: 0,
          yaxis: "y",
          name: model.get("symbol"),
          hoverinfo: "x+y",
        },
        {
          type: "bar",
          x: x.slice(1, -1),
          y: candles.map((c) => c[5]),
          width: iv * 0.7,
          marker: { color: up.map((u) => (u ? "rgba(22,199,132,0.55)" : "rgba(234,57,67,0.55)")) },
          yaxis: "y2",
          name: "volume",
          hovertemplate: "vol %{y}<extra></extra>",
        },
      ];
      const visible = Math.max(n, 48);
      const range = userRange || [lastCandle[0] - (visible - 0.5) * iv, lastCandle[0] + 2.5 * iv];
      const layout = {
        ...KN_CANDLE_LAYOUT,
        xaxis: { ...KN_CANDLE_LAYOUT.xaxis, range, autorange: false },
        yaxis: { ...KN_CANDLE_LAYOUT.yaxis, tickformat: `,.${pp}f` },
      };
      const colour = lastCandle[4] >= lastCandle[1] ? KN_UP : KN_DOWN;
      layout.shapes = [
        {
          type: "line",
          xref: "paper",
          x0: 0,
          x1: 1,
          yref: "y",
          y0: lastCandle[4],
          y1: lastCandle[4],
          line: { color: colour, width: 1, dash: "dot" },
        },
      ];
      layout.annotations = [
        {
          xref: "paper",
          x: 1,
          xanchor: "left",
          yref: "y",
          y: lastCandle[4],
          text: knFixed(lastCandle[4], pp).replace(/,/g, ""),
          showarrow: false,
          font: { color: "#0d1117", size: 10.5, family: "JetBrains Mono, Menlo, monospace" },
          bgcolor: colour,
          borderpad: 2,
        },
      ];
      Plotly.react(plot, data, layout, { displayModeBar: false, responsive: true, scrollZoom: true });
      if (!listening && typeof plot.on === "function") {
        plot.on("plotly_relayout", onRelayout);
        listening = true;
      }
      loading.remove();
    };

    const schedule = () => {
      paintHeader();
      if (!pending) {
        pending = true;
        requestAnimationFrame(draw);
      }
    };

    const disposeMessages = knOnMessage(model, (content) => {
      if (content.type === "snapshot") {
        candles = [];
        upsert(content.candles || []);
        schedule();
      } else if (content.type === "candles") {
        upsert(content.candles || []);
        schedule();
      }
    });

    knPlotly(model).then(
      (plotly) => {
        Plotly = plotly;
        schedule();
      },
      (error) => {
        loading.textContent = "plotly.js failed to load: " + String(error && error.message);
      },
    );
    model.on("change:symbol", paintHeader);
    model.send({ type: "ready" });
    return () => {
      disposed = true;
      disposeMessages();
      disposeStatus();
      model.off("change:symbol", paintHeader);
      if (Plotly) Plotly.purge(plot);
    };
  },
};
