/* mailramp UI behaviour: progressive enhancement only. Every page works without this file;
   it adds confirmations, live counts, progress polling and charts (Chart.js, vendored). */
(function () {
  "use strict";

  const csrfToken = () => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };

  /* Confirm destructive actions: <form data-confirm="Really?"> or, for one of several buttons in a
     form, <button data-confirm="..."> (the button that submitted wins over its form). */
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    const button = event.submitter;
    const question = (button && button.dataset && button.dataset.confirm) || form.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  /* Buttons that add a row from a <template>: <button data-add-row="template-id" data-into="container-id"> */
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-add-row]");
    if (button) {
      const template = document.getElementById(button.dataset.addRow);
      const into = document.getElementById(button.dataset.into);
      if (template && into) {
        const index = Number(into.dataset.next || into.children.length);
        into.dataset.next = String(index + 1);
        const html = template.innerHTML.replaceAll("__i__", String(index));
        into.insertAdjacentHTML("beforeend", html);
        const first = into.lastElementChild && into.lastElementChild.querySelector("select, input");
        if (first) first.focus();
        into.dispatchEvent(new Event("input", { bubbles: true }));
      }
      return;
    }
    const move = event.target.closest("[data-move-row]");
    if (move) {
      const row = move.closest("[data-row]");
      if (row && move.dataset.moveRow === "up" && row.previousElementSibling) {
        row.parentNode.insertBefore(row, row.previousElementSibling);
      } else if (row && move.dataset.moveRow === "down" && row.nextElementSibling) {
        row.parentNode.insertBefore(row.nextElementSibling, row);
      }
      move.focus();
      return;
    }
    const remove = event.target.closest("[data-remove-row]");
    if (remove) {
      const row = remove.closest(remove.dataset.removeRow || ".rule");
      const form = remove.closest("form");
      if (row) row.remove();
      if (form) form.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });

  /* Live counts: <form data-live-count="/url" data-count-into="element-id"> posts the form and shows
     {"count": n} or {"error": "...", "where": "..."} as the user edits. */
  function liveCount(form) {
    const target = document.getElementById(form.dataset.countInto);
    if (!target) return;
    let timer = null;
    let sequence = 0;
    const run = () => {
      const mine = ++sequence;
      target.setAttribute("aria-busy", "true");
      fetch(form.dataset.liveCount, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        credentials: "same-origin",
      })
        .then((r) => r.json())
        .then((body) => {
          if (mine !== sequence) return;
          target.removeAttribute("aria-busy");
          if (body.error) {
            target.textContent = (body.where ? body.where + ": " : "") + body.error;
            target.classList.add("error-text");
          } else {
            let text = Number(body.count).toLocaleString() + " contacts match";
            if (body.sendable !== undefined && body.sendable !== body.count) {
              text += ` (${Number(body.sendable).toLocaleString()} can be sent to)`;
            }
            target.textContent = text;
            target.classList.remove("error-text");
          }
        })
        .catch(() => { target.textContent = "count unavailable"; });
    };
    const schedule = () => { clearTimeout(timer); timer = setTimeout(run, 250); };
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
    run();
  }

  /* When the work a page shows is finished, its <main> is fetched again and swapped in place. Not a
     reload: a reload is a navigation, and one that starts while the user's click on a link is on its
     way cancels that click (the page the user left comes back). A fetch cancels nothing. */
  function refreshInPlace() {
    const url = window.location.href;
    fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
      .then((html) => {
        if (window.location.href !== url) return;
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        const main = document.querySelector("main");
        if (!fresh || !main) return;
        const adopted = document.importNode(fresh, true);
        main.replaceWith(adopted);
        enhance(adopted);
      })
      .catch(() => {});
  }

  /* Progress: <div data-progress-url="/url"> with a <progress> and a [data-progress-text] inside.
     The URL answers {"done", "total", "text", "finished"}; when finished the page refreshes in place. */
  function pollProgress(box) {
    const bar = box.querySelector("progress");
    const text = box.querySelector("[data-progress-text]");
    const tick = () => {
      fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => r.json())
        .then((body) => {
          if (bar) { bar.max = Math.max(body.total || 0, 1); bar.value = body.done || 0; }
          if (text && body.text) text.textContent = body.text;
          if (body.finished) {
            if (box.dataset.reloadWhenDone !== "false") refreshInPlace();
          } else {
            setTimeout(tick, Number(box.dataset.interval || 1000));
          }
        })
        .catch(() => setTimeout(tick, 3000));
    };
    tick();
  }

  /* Charts */
  const ARM_COLOURS = {
    treatment: "#1947b8",
    control: "#c2410c",
    holdout: "#4b5563",
    shadow: "#7c3aed",
  };
  const OUTCOME_COLOURS = { advance: "#11663a", hold: "#7a4d00", pause: "#b45309", rollback: "#a11919", kill: "#a11919" };
  const colourOf = (arm, i) => ARM_COLOURS[arm] || ["#0f766e", "#9d174d", "#4d7c0f"][i % 3];
  const alpha = (hex, a) => {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  };
  const formatValue = (format, v) => {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (format === "pct") return (v * 100).toFixed(2) + "%";
    if (format === "money") return v.toFixed(2);
    return Number(v).toLocaleString();
  };
  /* Times on a linear axis, in UTC like the rest of the UI; seconds when the span is short. */
  const timeSpan = (spec) => {
    const xs = [];
    (spec.points || []).forEach((p) => xs.push(p.x));
    (spec.arms || []).forEach((a) => (a.points || []).forEach((p) => xs.push(p.x)));
    return xs.length ? Math.max(...xs) - Math.min(...xs) : 0;
  };
  const formatTime = (ms, span) => {
    const iso = new Date(ms).toISOString();
    if (span !== undefined && span < 15 * 60 * 1000) return iso.slice(11, 19);
    if (span !== undefined && span < 24 * 3600 * 1000) return iso.slice(11, 16);
    return iso.slice(5, 16).replace("T", " ");
  };
  const xAxis = (spec) => {
    const span = timeSpan(spec);
    return {
      type: "linear",
      title: { display: true, text: spec.x_label || (spec.x_kind === "time" ? "time (UTC)" : "") },
      ticks: {
        callback: (v) => (spec.x_kind === "time" ? formatTime(v, span) : v),
        maxRotation: 0,
        autoSkipPadding: 24,
      },
    };
  };

  /* A long vertical axis title in lines of about 20 characters: never clipped by a short chart. */
  function axisLines(text) {
    const lines = [];
    (text || "").split(" ").forEach((word) => {
      const last = lines.length - 1;
      if (last >= 0 && (lines[last] + " " + word).length <= 20) lines[last] += " " + word;
      else lines.push(word);
    });
    return lines.length > 1 ? lines : text;
  }

  function armSeries(spec) {
    const datasets = [];
    spec.arms.forEach((arm, i) => {
      const colour = colourOf(arm.arm, i);
      const hasBand = arm.points.some((p) => p.lo !== null && p.lo !== undefined);
      if (hasBand) {
        datasets.push({
          label: `${arm.arm} lower`, data: arm.points.map((p) => ({ x: p.x, y: p.lo })),
          borderWidth: 0, pointRadius: 0, fill: false, band: true,
        });
        datasets.push({
          label: `${arm.arm} 95% interval`, data: arm.points.map((p) => ({ x: p.x, y: p.hi })),
          borderWidth: 0, pointRadius: 0, backgroundColor: alpha(colour, 0.16), fill: "-1", band: true,
        });
      }
      datasets.push({
        label: arm.arm, data: arm.points.map((p) => ({ x: p.x, y: p.y })),
        borderColor: colour, backgroundColor: colour, borderWidth: 2, pointRadius: 3,
        borderDash: arm.arm === "control" ? [6, 4] : [], fill: false,
      });
    });
    return {
      type: "line",
      data: { datasets },
      options: {
        ...baseOptions(spec),
        scales: { x: xAxis(spec), y: { title: { display: !!spec.y_label, text: axisLines(spec.y_label) }, ticks: { callback: (v) => formatValue(spec.format, v) } } },
      },
    };
  }

  function exposure(spec) {
    const decisions = (spec.decisions || []).map((d) => ({ x: d.x, y: d.y, label: d.label, outcome: d.outcome }));
    return {
      type: "line",
      data: {
        datasets: [
          {
            label: "exposure", data: spec.points, stepped: "before", borderColor: ARM_COLOURS.treatment,
            backgroundColor: alpha(ARM_COLOURS.treatment, 0.12), fill: true, pointRadius: 2, borderWidth: 2,
          },
          {
            label: "decisions", type: "scatter", data: decisions, pointRadius: 7, pointHoverRadius: 9,
            pointStyle: "rectRot",
            pointBackgroundColor: decisions.map((d) => OUTCOME_COLOURS[d.outcome] || "#17202e"),
            pointBorderColor: "#ffffff",
          },
        ],
      },
      options: {
        ...baseOptions(spec),
        plugins: {
          ...baseOptions(spec).plugins,
          tooltip: { callbacks: { label: (ctx) => (ctx.raw.label ? ctx.raw.label : `exposure ${formatValue("pct", ctx.raw.y)}`) } },
        },
        scales: { x: xAxis(spec), y: { min: 0, max: 1, ticks: { callback: (v) => formatValue("pct", v) } } },
      },
    };
  }

  function funnel(spec) {
    return {
      type: "bar",
      data: {
        labels: spec.steps,
        datasets: spec.arms.map((arm, i) => ({
          label: arm.arm, data: arm.values, backgroundColor: colourOf(arm.arm, i), borderRadius: 3,
        })),
      },
      options: {
        ...baseOptions(spec),
        scales: { y: { beginAtZero: true, ticks: { callback: (v) => formatValue(spec.format, v) } } },
      },
    };
  }

  function baseOptions(spec) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: true,
      interaction: { mode: "nearest", intersect: false },
      plugins: {
        legend: { labels: { filter: (item, data) => !data.datasets[item.datasetIndex].band || item.text.endsWith("interval") } },
        tooltip: {
          callbacks: {
            title: (items) => (items.length && spec.x_kind === "time" ? formatTime(items[0].parsed.x) : ""),
            label: (ctx) => `${ctx.dataset.label}: ${formatValue(spec.format, ctx.parsed.y)}`,
          },
        },
      },
    };
  }

  const BUILDERS = { arm_series: armSeries, exposure, funnel };

  function drawCharts(root) {
    const canvases = root.querySelectorAll("canvas[data-chart]");
    if (!canvases.length) return;
    if (typeof window.Chart === "undefined") {
      document.documentElement.classList.add("no-charts");
      root.querySelectorAll("details.chart-data").forEach((d) => { d.open = true; });
      return;
    }
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#3f4a5c";
    canvases.forEach((canvas) => {
      const source = document.getElementById(canvas.dataset.source);
      const build = BUILDERS[canvas.dataset.chart];
      if (!source || !build) return;
      const spec = JSON.parse(source.textContent);
      const chart = new window.Chart(canvas, build(spec));
      canvas.dataset.drawn = "true";
      canvas.chart = chart;
    });
  }

  /* Print buttons, and timezone fields filled with the browser's own zone when empty */
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-print]")) window.print();
  });
  function fillTimezone(input) {
    if (!input.value) {
      try { input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { input.value = "UTC"; }
    }
  }

  /* Counts a list shows later: <span data-count-url="/url"> answered {"count"} or {"error"}; asked
     one after the other, so a list of slow counts does not load the database all at once. */
  function fillCounts(root) {
    const cells = Array.from(root.querySelectorAll("[data-count-url]"));
    const next = () => {
      const cell = cells.shift();
      if (!cell) return;
      fetch(cell.dataset.countUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => r.json())
        .then((body) => {
          if (body.error) { cell.textContent = body.error; cell.classList.add("error-text"); }
          else cell.textContent = Number(body.count).toLocaleString("en-GB");
          cell.removeAttribute("data-count-url");
        })
        .catch(() => { cell.textContent = "count unavailable"; })
        .finally(next);
    };
    next();
  }

  /* The audience size next to the campaign form's segment: <span data-audience-size-url> after a select. */
  function audienceSize(target) {
    const select = document.getElementById("f-segment_id");
    if (!select) return;
    let sequence = 0;
    const show = () => {
      const mine = ++sequence;
      target.textContent = "counting…";
      const url = target.dataset.audienceSizeUrl + (select.value ? "?segment_id=" + encodeURIComponent(select.value) : "");
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => r.json())
        .then((body) => {
          if (mine !== sequence) return;
          target.textContent = body.error ? body.error : Number(body.count).toLocaleString("en-GB") + " contacts can be sent to";
        })
        .catch(() => { target.textContent = "size unavailable"; });
    };
    select.addEventListener("change", show);
    show();
  }

  /* A box that scrolls sideways (a wide table on a small screen) must take keyboard focus, so that
     the arrow keys scroll it (WCAG 2.1.1): tabindex=0 with a name, only while it does overflow. */
  const SCROLLERS = ".table-wrap, .table-scroll, details.chart-data, pre";
  function focusableScrollers(root) {
    (root || document).querySelectorAll(SCROLLERS).forEach((box) => {
      const overflows = box.scrollWidth > box.clientWidth + 1;
      if (overflows && !box.hasAttribute("tabindex")) {
        const caption = box.querySelector("caption");
        const heading = box.closest("section, figure, .card");
        const named = heading && heading.querySelector("h2, h3, figcaption");
        const label = (caption || named || { textContent: "" }).textContent.trim() || "Table";
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", label + " (scrolls sideways)");
        box.dataset.scrollerAdded = "1";
      } else if (!overflows && box.dataset.scrollerAdded) {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
        delete box.dataset.scrollerAdded;
      }
    });
  }

  /* Everything a page (or a part swapped in by refreshInPlace) needs once its HTML is there. */
  function enhance(root) {
    focusableScrollers(root);
    root.querySelectorAll("input[data-browser-timezone]").forEach(fillTimezone);
    root.querySelectorAll("form[data-live-count]").forEach(liveCount);
    root.querySelectorAll("[data-progress-url]").forEach(pollProgress);
    fillCounts(root);
    root.querySelectorAll("[data-audience-size-url]").forEach(audienceSize);
    drawCharts(root);
  }

  window.addEventListener("DOMContentLoaded", () => {
    enhance(document);
    let resizing = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => focusableScrollers(document), 100);
    });
    document.addEventListener("toggle", () => focusableScrollers(document), true); // <details> opened
    window.addEventListener("beforeprint", () => {
      document.querySelectorAll("canvas[data-chart]").forEach((c) => c.chart && c.chart.resize());
    });
  });
})();
