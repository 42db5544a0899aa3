/**
 * Draws one dashboard panel as SVG from a Prometheus range query's answer: one line per series,
 * its legend as Grafana would write it, a y axis in the panel's unit, time in seconds of the run.
 */

export interface PanelSeries {
  readonly metric: Readonly<Record<string, string>>;
  readonly values?: readonly (readonly [number, string])[];
}

export interface PanelToDraw {
  readonly title: string;
  readonly unit: string;
  readonly legendFormat: string;
  readonly series: readonly PanelSeries[];
}

const COLOURS = ['#73bf69', '#f2cc0c', '#8ab8ff', '#ff780a', '#f2495c', '#5794f2', '#b877d9', '#fade2a', '#37872d', '#c4162a'];
const WIDTH = 660;
const HEIGHT = 300;
const PLOT = { left: 64, right: 12, top: 36, bottom: 96 };

/** A legend as Grafana draws it: `{{label}}` replaced by the series' label value. */
export function legendOf(format: string, metric: Readonly<Record<string, string>>): string {
  const text = format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_all, label: string) => metric[label] ?? '').replace(/\s+/g, ' ').trim();
  return text === '' ? Object.entries(metric).map(([key, value]) => `${key}=${value}`).join(', ') : text;
}

/** A value in the panel's unit (Grafana's unit names: s, percentunit, reqps, short). */
export function formatValue(value: number, unit: string): string {
  const number = (n: number): string => (Math.abs(n) >= 100 || Number.isInteger(n) ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(1) : n.toPrecision(2));
  switch (unit) {
    case 's':
      return value !== 0 && Math.abs(value) < 1 ? `${number(value * 1000)} ms` : `${number(value)} s`;
    case 'percentunit':
      return `${number(value * 100)}%`;
    case 'reqps':
      return `${number(value)} req/s`;
    default:
      return number(value);
  }
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The panel as an SVG document; `start`/`end` are the run's bounds (seconds since the epoch). */
export function panelSvg(panel: PanelToDraw, start: number, end: number): string {
  const points = panel.series.map((series) =>
    (series.values ?? []).map(([time, value]) => [time, Number(value)] as const).filter(([, value]) => Number.isFinite(value)),
  );
  const values = points.flat().map(([, value]) => value);
  const top = Math.max(...values, 0) * 1.1 || 1;
  const width = WIDTH - PLOT.left - PLOT.right;
  const height = HEIGHT - PLOT.top - PLOT.bottom;
  const x = (time: number): number => PLOT.left + ((time - start) / Math.max(end - start, 1)) * width;
  const y = (value: number): number => PLOT.top + height - (value / top) * height;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#181b1f" stroke="#2c3235"/>`,
    `<text x="10" y="22" fill="#d8d9da" font-size="13" font-weight="bold">${escapeXml(panel.title)}</text>`,
  ];
  for (let tick = 0; tick <= 4; tick++) {
    const value = (top * tick) / 4;
    parts.push(`<line x1="${PLOT.left}" x2="${WIDTH - PLOT.right}" y1="${y(value)}" y2="${y(value)}" stroke="#2c3235"/>`);
    parts.push(`<text x="${PLOT.left - 6}" y="${y(value) + 4}" fill="#8e8e8e" text-anchor="end">${escapeXml(formatValue(value, panel.unit))}</text>`);
  }
  const span = end - start;
  for (let tick = 0; tick <= 6; tick++) {
    const time = start + (span * tick) / 6;
    parts.push(`<text x="${x(time)}" y="${PLOT.top + height + 14}" fill="#8e8e8e" text-anchor="middle">${Math.round(time - start)} s</text>`);
  }
  points.forEach((line, index) => {
    if (line.length === 0) return;
    const colour = COLOURS[index % COLOURS.length]!;
    const path = line.map(([time, value], at) => `${at === 0 ? 'M' : 'L'}${x(time).toFixed(1)},${y(value).toFixed(1)}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${colour}" stroke-width="1.5"/>`);
  });
  // Legend: up to three columns, as many rows as fit.
  const legends = panel.series.map((series) => legendOf(panel.legendFormat, series.metric));
  legends.slice(0, 12).forEach((legend, index) => {
    const column = index % 3;
    const row = Math.floor(index / 3);
    const lx = 10 + column * 215;
    const ly = PLOT.top + height + 32 + row * 15;
    parts.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="3" fill="${COLOURS[index % COLOURS.length]}"/>`);
    parts.push(`<text x="${lx + 14}" y="${ly - 3}" fill="#ccccdc">${escapeXml(legend.length > 32 ? `${legend.slice(0, 31)}…` : legend)}</text>`);
  });
  if (legends.length > 12) parts.push(`<text x="10" y="${HEIGHT - 6}" fill="#8e8e8e">and ${legends.length - 12} more series</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}
