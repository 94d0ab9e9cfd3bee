// The disk usage chart of the host page: used percent over time as an inline SVG line, and
// the forecast as a dashed line from the last sample to 100% at the forecast's time (clipped
// to the chart's right edge). Drawn with DOM calls; no library.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

/** A chart of `mount` (MountHistory) from `sinceMs` to now (and on into the forecast). */
export function usageChart(mount, sinceMs, nowMs) {
  const W = 640;
  const H = 180;
  const L = 36;
  const R = 8;
  const T = 8;
  const B = 22;
  const samples = mount.samples || [];
  let end = nowMs;
  if (mount.full_at_ms) end = Math.min(Math.max(nowMs, mount.full_at_ms), nowMs + (nowMs - sinceMs) / 2);
  const start = Math.min(sinceMs, samples.length ? samples[0].at_ms : sinceMs);
  const x = (t) => L + ((t - start) / Math.max(1, end - start)) * (W - L - R);
  const y = (p) => T + (1 - Math.max(0, Math.min(100, p)) / 100) * (H - T - B);
  const root = svg('svg', {
    class: 'chart', viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none',
    role: 'img', 'aria-label': 'Disk usage of ' + mount.mount_point + ' over time',
  });
  const grid = svg('g', { class: 'grid' });
  for (const p of [0, 25, 50, 75, 100]) {
    grid.appendChild(svg('line', { x1: L, x2: W - R, y1: y(p), y2: y(p) }));
    grid.appendChild(svg('text', { x: 2, y: y(p) + 4 }, p + '%'));
  }
  const day = 86400000;
  for (let t = Math.ceil(start / day) * day; t < end; t += day * Math.max(1, Math.round((end - start) / day / 7))) {
    const d = new Date(t);
    grid.appendChild(svg('text', { x: x(t), y: H - 6, 'text-anchor': 'middle' }, (d.getMonth() + 1) + '/' + d.getDate()));
  }
  root.appendChild(grid);
  if (samples.length) {
    const pts = samples.map((s) => x(s.at_ms).toFixed(1) + ',' + y(s.used_percent).toFixed(1));
    const first = samples[0];
    const last = samples[samples.length - 1];
    root.appendChild(svg('polygon', {
      class: 'area',
      points: x(first.at_ms).toFixed(1) + ',' + y(0) + ' ' + pts.join(' ') + ' ' + x(last.at_ms).toFixed(1) + ',' + y(0),
    }));
    root.appendChild(svg('polyline', { class: 'line', points: pts.join(' ') }));
    if (mount.full_at_ms) {
      const tEnd = Math.min(mount.full_at_ms, end);
      const frac = (tEnd - last.at_ms) / Math.max(1, mount.full_at_ms - last.at_ms);
      const pEnd = last.used_percent + (100 - last.used_percent) * Math.max(0, Math.min(1, frac));
      root.appendChild(svg('polyline', {
        class: 'forecast',
        points: x(last.at_ms).toFixed(1) + ',' + y(last.used_percent).toFixed(1) + ' ' + x(tEnd).toFixed(1) + ',' + y(pEnd).toFixed(1),
      }));
    }
  } else {
    root.appendChild(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no samples yet'));
  }
  return root;
}
