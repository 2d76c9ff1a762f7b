// rnnkit visualize: the page's own script (no libraries, no network).
// The data is the JSON in the script element #rnnkit-data; body[data-kind] says which view to draw.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("rnnkit-data").textContent);
  const app = document.getElementById("app");
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  };
  // Diverging colour: u in [-1, 1]; blue below the centre, red above, white at it.
  const colour = (u) => {
    u = Math.max(-1, Math.min(1, u));
    const a = Math.round(255 * (1 - Math.abs(u)));
    return u >= 0 ? `rgb(255, ${a}, ${a})` : `rgb(${a}, ${a}, 255)`;
  };
  const show = (c) => (c === "\n" ? "\u21b5" : c === " " ? "\u2423" : c === "\t" ? "\u21e5" : c);

  function charlm() {
    const info = data.info;
    app.append(el("p", { class: "info" },
      `${info.cell}, ${info.layers} layer(s); ${info.characters} characters of ${info.source}; ` +
      `${info.bits_per_char} bits/char on this text. States and gates: the cell's step math run in Python ` +
      `(next-character probabilities within ${info.max_prob_diff} of the model's forward pass).` +
      (info.unknown ? ` Characters unseen in training (read as unknown): ${info.unknown}` : "")));
    const layerSel = el("select", { id: "layer" });
    data.layers.forEach((_, i) => layerSel.append(el("option", { value: i }, `layer ${i}`)));
    const quantSel = el("select", { id: "quantity" });
    const unitSel = el("select", { id: "unit" });
    const legend = el("span", { id: "legend" });
    app.append(el("div", { class: "controls" },
      el("label", {}, "layer ", layerSel), el("label", {}, "quantity ", quantSel),
      el("label", {}, "unit ", unitSel), legend));
    const textBox = el("div", { id: "text" });
    const chars = [...data.text];   // code points, as Python counts characters
    const spans = [];
    for (const c of chars) {
      const s = el("span", {}, c === "\n" ? "\u21b5\n" : c);
      spans.push(s);
      textBox.append(s);
    }
    const tip = el("div", { id: "tip", hidden: "" });
    app.append(textBox, tip);

    const decoded = new Map();
    const bytes = (q) => {   // the unit-major uint8 activations of a quantity, decoded once
      if (!decoded.has(q)) {
        const raw = atob(q.data);
        const arr = new Uint8Array(raw.length);
        for (let i = 0; i < raw.length; i++) arr[i] = raw.charCodeAt(i);
        decoded.set(q, arr);
      }
      return decoded.get(q);
    };
    const current = { layer: 0, q: null, unit: 0 };
    const value = (t) => {
      const q = current.q, u = current.unit, T = chars.length;
      return q.lo[u] + (bytes(q)[u * T + t] / 255) * (q.hi[u] - q.lo[u]);
    };
    const fillQuantities = () => {
      quantSel.replaceChildren(...data.layers[current.layer].quantities.map((q, i) => el("option", { value: i }, q.name)));
    };
    const fillUnits = () => {
      unitSel.replaceChildren();
      for (let u = 0; u < current.q.units; u++) unitSel.append(el("option", { value: u }, String(u)));
    };
    function paint() {
      const q = current.q, u = current.unit;
      const scale = q.scale === null ? Math.max(Math.abs(q.lo[u]), Math.abs(q.hi[u])) || 1 : q.scale;
      for (let t = 0; t < spans.length; t++) spans[t].style.backgroundColor = colour((value(t) - q.center) / scale);
      legend.textContent = `blue ${(q.center - scale).toPrecision(3)} \u2014 white ${q.center} \u2014 red ` +
        `${(q.center + scale).toPrecision(3)}`;
    }
    function select(layer, quantity, unit) {
      const qs = data.layers[layer].quantities;
      const qi = typeof quantity === "number" ? quantity : qs.findIndex((q) => q.name === quantity);
      if (qi < 0 || unit < 0 || unit >= qs[qi].units) throw new Error(`no unit ${quantity} ${unit} in layer ${layer}`);
      const changedQuantity = current.layer !== layer || current.q !== qs[qi];
      current.layer = layer; current.q = qs[qi]; current.unit = unit;
      layerSel.value = String(layer);
      fillQuantities();
      quantSel.value = String(qi);
      if (changedQuantity || unitSel.options.length !== current.q.units) fillUnits();
      unitSel.value = String(unit);
      paint();
      for (const row of document.querySelectorAll("#ranking tr[data-unit]")) {
        row.classList.toggle("chosen", +row.dataset.layer === layer && row.dataset.quantity === current.q.name &&
          +row.dataset.unit === unit);
      }
    }
    layerSel.addEventListener("change", () => select(+layerSel.value, 0, 0));
    quantSel.addEventListener("change", () => select(current.layer, +quantSel.value, Math.min(current.unit,
      data.layers[current.layer].quantities[+quantSel.value].units - 1)));
    unitSel.addEventListener("change", () => select(current.layer, +quantSel.value, +unitSel.value));

    textBox.addEventListener("mousemove", (ev) => {
      const t = spans.indexOf(ev.target);
      if (t < 0) { tip.hidden = true; return; }
      const preds = [...data.top[t]].map((c, i) => `${JSON.stringify(show(c))} ${(100 * data.probs[t][i]).toFixed(1)}%`);
      tip.textContent = `#${t} ${JSON.stringify(show(chars[t]))}: ${current.q.name} ${current.unit} = ` +
        `${value(t).toFixed(3)}\nnext: ${preds.join("  ")}`;
      tip.hidden = false;
      tip.style.left = `${ev.pageX + 12}px`;
      tip.style.top = `${ev.pageY + 14}px`;
    });
    textBox.addEventListener("mouseleave", () => { tip.hidden = true; });

    // Units ranked by |correlation| with the text features; a click selects one.
    const features = [...new Set(data.ranking.map((s) => s.feature))];
    const featureSel = el("select", { id: "feature" }, el("option", { value: "" }, "all features"),
      ...features.map((f) => el("option", { value: f }, f)));
    const table = el("table", { id: "ranking" });
    const fillRanking = () => {
      const rows = data.ranking.filter((s) => !featureSel.value || s.feature === featureSel.value);
      table.replaceChildren(el("tr", {}, ...["feature", "r", "layer", "quantity", "unit"].map((h) => el("th", {}, h))),
        ...rows.map((s) => {
          const tr = el("tr", { "data-layer": s.layer, "data-quantity": s.quantity, "data-unit": s.unit },
            ...[s.feature, s.r.toFixed(3), s.layer, s.quantity, s.unit].map((v) => el("td", {}, String(v))));
          tr.addEventListener("click", () => select(s.layer, s.quantity, s.unit));
          return tr;
        }));
    };
    featureSel.addEventListener("change", fillRanking);
    fillRanking();
    app.append(el("section", { id: "units" }, el("h2", {}, "Interpretable units"),
      el("p", {}, "Units ranked by |Pearson r| between their activation and a feature of the text. " +
        "Click a row to colour the text by that unit. ", featureSel), table));
    for (const dot of document.querySelectorAll("#saturation circle[data-unit]")) {
      dot.addEventListener("click", () => select(+dot.dataset.layer, dot.dataset.quantity, +dot.dataset.unit));
    }
    const start = data.initial;
    select(start.layer, start.quantity, start.unit);
    // For tests and notebooks: choose a unit, read the colours.
    window.rnnkitViz = { select, colours: () => spans.map((s) => s.style.backgroundColor), current };
  }

  function attention() {
    // data.rows: [{tokens: [...], weights: [...], label}] (classifier) or data.matrix (seq2seq)
    for (const m of data.items) {
      const box = el("div", { class: "attention" });
      if (m.caption) box.append(el("p", { class: "info" }, m.caption));
      if (m.tgt === undefined) {   // a classifier: each word coloured by its pooling weight
        const max = Math.max(...m.weights) || 1;
        const line = el("p", { class: "words" });
        m.src.forEach((w, i) => {
          const s = el("span", { title: `${w}: ${m.weights[i].toFixed(3)}` }, w);
          s.style.backgroundColor = colour(m.weights[i] / max);
          line.append(s, " ");
        });
        box.append(line);
      } else {                      // seq2seq: one row per output token, one column per source token
        const table = el("table", { class: "matrix" });
        table.append(el("tr", {}, el("th", {}, ""), ...m.src.map((w) => el("th", {}, w))));
        m.tgt.forEach((w, i) => {
          const tr = el("tr", {}, el("th", {}, w));
          m.weights[i].forEach((a, j) => {
            const td = el("td", { title: `${w} \u2190 ${m.src[j]}: ${a.toFixed(3)}` }, a >= 0.005 ? a.toFixed(2) : "");
            td.style.backgroundColor = colour(a);
            tr.append(td);
          });
          table.append(tr);
        });
        box.append(table);
      }
      app.append(box);
    }
    window.rnnkitViz = { colours: () => [...document.querySelectorAll(".attention span, .attention td")]
      .map((s) => s.style.backgroundColor) };
  }

  (document.body.dataset.kind === "charlm" ? charlm : attention)();
  document.body.dataset.ready = "1";
})();
