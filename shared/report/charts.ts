/**
 * Vega-Lite specs of the research report's charts. Each builder takes rows already checked and
 * converted by the report (times in ms since epoch, UTC) and returns a spec with its data inline.
 * Every time axis uses a UTC scale, so the SVG does not depend on the machine's time zone.
 */
import type { TopLevelSpec } from 'vega-lite';

/** Width of the plotting area of the full-width charts, in pixels. */
export const CHART_WIDTH = 860;

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

export const COLORS = {
  strategy: '#1f6fb4',
  buyHold: '#9a9a9a',
  drawdown: '#c8322d',
  price: '#8593a5',
  long: '#1a9850',
  short: '#d73027',
  inSample: '#b9d3ea',
  outOfSample: '#f28e2b',
  heat: '#e07b14',
  benchmark: '#7b4fb0',
  negative: '#d73027',
  neutral: '#f7f7f7',
  positive: '#1a9850',
} as const;

const MONTH_NAMES = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const baseConfig = {
  font: FONT,
  background: 'white',
  padding: 8,
  view: { stroke: null },
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 'normal',
    labelColor: '#333',
    titleColor: '#333',
    gridColor: '#ececec',
    domainColor: '#999',
    tickColor: '#999',
  },
  legend: {
    labelFontSize: 11,
    titleFontSize: 11,
    titleFontWeight: 'normal',
    orient: 'top',
    direction: 'horizontal',
  },
} as const;

const timeAxis = {
  field: 't',
  type: 'temporal',
  scale: { type: 'utc' },
  axis: { title: null, labelOverlap: true, tickCount: 10 },
} as const;

/** A point of a time series; `value` null leaves a gap. */
export interface TimePoint {
  readonly t: number;
  readonly value: number | null;
}

/** Strategy equity against buy-and-hold, both in dollars. */
export function equityChart(
  strategy: readonly TimePoint[],
  buyHold: readonly TimePoint[],
  names: { readonly buyHold?: string; readonly extra?: { name: string; points: readonly TimePoint[] } } = {},
): TopLevelSpec {
  const buyHoldName = names.buyHold ?? 'Buy & hold';
  const extra = names.extra;
  const values = [
    ...strategy.map((p) => ({ ...p, series: 'Strategy' })),
    ...buyHold.map((p) => ({ ...p, series: buyHoldName })),
    ...(extra === undefined ? [] : extra.points.map((p) => ({ ...p, series: extra.name }))),
  ];
  const domain = ['Strategy', buyHoldName, ...(extra === undefined ? [] : [extra.name])];
  const range = [COLORS.strategy, COLORS.buyHold, ...(extra === undefined ? [] : [COLORS.benchmark])];
  return {
    config: baseConfig,
    width: CHART_WIDTH,
    height: 300,
    data: { values },
    mark: { type: 'line', strokeWidth: 1.6 },
    encoding: {
      x: timeAxis,
      y: {
        field: 'value',
        type: 'quantitative',
        scale: { zero: false },
        axis: { title: 'Portfolio value ($)', format: '$,.0f' },
      },
      color: {
        field: 'series',
        type: 'nominal',
        scale: { domain, range },
        legend: { title: null, orient: 'bottom', labelLimit: 600 },
      },
    },
  };
}

/** One series over time, as a line or a filled area down to zero. */
export function timeSeriesChart(options: {
  readonly points: readonly TimePoint[];
  readonly yTitle: string;
  readonly yFormat: string;
  readonly color: string;
  readonly kind: 'line' | 'area';
  readonly height: number;
  readonly zero: boolean;
}): TopLevelSpec {
  const mark =
    options.kind === 'area'
      ? {
          type: 'area' as const,
          color: options.color,
          fillOpacity: 0.3,
          line: { color: options.color, strokeWidth: 1.2 },
        }
      : { type: 'line' as const, color: options.color, strokeWidth: 1.6 };
  return {
    config: baseConfig,
    width: CHART_WIDTH,
    height: options.height,
    data: { values: [...options.points] },
    mark,
    encoding: {
      x: timeAxis,
      y: {
        field: 'value',
        type: 'quantitative',
        scale: { zero: options.zero },
        axis: { title: options.yTitle, format: options.yFormat },
      },
    },
  };
}

/** Drawdown below the running peak, drawn downwards from zero. */
export function drawdownChart(drawdownPct: readonly TimePoint[]): TopLevelSpec {
  return timeSeriesChart({
    points: drawdownPct.map((p) => ({ t: p.t, value: p.value === null ? null : -p.value })),
    yTitle: 'Drawdown (%)',
    yFormat: '.1f',
    color: COLORS.drawdown,
    kind: 'area',
    height: 170,
    zero: true,
  });
}

/** A trade marker on the price chart: which side, entry or exit, where. */
export interface TradeMarker {
  readonly t: number;
  readonly price: number;
  readonly marker: 'long entry' | 'long exit' | 'short entry' | 'short exit';
}

/** One symbol's closes with the trades' entries and exits. */
export function priceChart(
  closes: readonly TimePoint[],
  markers: readonly TradeMarker[],
  overlays: readonly { name: string; points: readonly TimePoint[] }[] = [],
): TopLevelSpec {
  const overlayValues = overlays.flatMap((o) => o.points.map((p) => ({ ...p, overlay: o.name })));
  const overlayLayer =
    overlays.length === 0
      ? []
      : [
          {
            data: { values: overlayValues },
            mark: { type: 'line' as const, strokeWidth: 1, strokeDash: [4, 2] },
            encoding: {
              x: timeAxis,
              y: { field: 'value', type: 'quantitative' as const },
              color: {
                field: 'overlay',
                type: 'nominal' as const,
                scale: {
                  domain: overlays.map((o) => o.name),
                  range: OVERLAY_COLORS.slice(0, overlays.length),
                },
                legend: { title: null, orient: 'bottom' as const, labelLimit: 400 },
              },
            },
          },
        ];
  return {
    config: baseConfig,
    width: CHART_WIDTH,
    height: 250,
    resolve: { scale: { color: 'independent' } },
    layer: [
      {
        data: { values: [...closes] },
        mark: { type: 'line', color: COLORS.price, strokeWidth: 1.2 },
        encoding: {
          x: timeAxis,
          y: {
            field: 'value',
            type: 'quantitative',
            scale: { zero: false },
            axis: { title: 'Close ($)', format: '$,.0f' },
          },
        },
      },
      ...overlayLayer,
      {
        data: { values: [...markers] },
        mark: { type: 'point', size: 64, strokeWidth: 1.5, opacity: 1 },
        encoding: {
          x: timeAxis,
          y: { field: 'price', type: 'quantitative' },
          shape: markerScale(['triangle-up', 'circle', 'triangle-down', 'circle']),
          fill: markerScale([COLORS.long, 'white', COLORS.short, 'white']),
          stroke: markerScale([COLORS.long, COLORS.long, COLORS.short, COLORS.short]),
        },
      },
    ],
  };
}

/** Colors of indicator and stop overlays, in order. */
const OVERLAY_COLORS = ['#2b8cbe', '#e6550d', '#c8322d', '#756bb1', '#31a354'];

const MARKERS: readonly TradeMarker['marker'][] = ['long entry', 'long exit', 'short entry', 'short exit'];

/** One channel of the trade markers; fill, stroke and shape share a field, so they share one legend. */
function markerScale(range: readonly string[]) {
  return {
    field: 'marker',
    type: 'nominal',
    scale: { domain: [...MARKERS], range: [...range] },
    legend: { title: null },
  } as const;
}

/** A month's return for the heatmap. */
export interface MonthCell {
  readonly year: number;
  readonly month: number;
  readonly returnPct: number;
}

/** Year × month heatmap of returns on a diverging scale centred on zero, with the values written in. */
export function monthlyReturnsChart(cells: readonly MonthCell[]): TopLevelSpec {
  const years = cells.map((c) => c.year);
  const firstYear = Math.min(...years);
  const lastYear = Math.max(...years);
  const yearDomain = Array.from({ length: lastYear - firstYear + 1 }, (_, i) => firstYear + i);
  const extent = Math.max(...cells.map((c) => Math.abs(c.returnPct)), 0.01);
  const monthLabel = `${JSON.stringify(MONTH_NAMES)}[datum.value - 1]`;
  return {
    config: baseConfig,
    width: { step: 58 },
    height: { step: 26 },
    data: { values: [...cells] },
    encoding: {
      x: {
        field: 'month',
        type: 'ordinal',
        scale: { domain: MONTH_NAMES.map((_, i) => i + 1) },
        axis: {
          title: null,
          orient: 'top',
          labelExpr: monthLabel,
          labelAngle: 0,
          domain: false,
          ticks: false,
        },
      },
      y: {
        field: 'year',
        type: 'ordinal',
        scale: { domain: yearDomain },
        axis: { title: null, domain: false, ticks: false },
      },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          color: {
            field: 'returnPct',
            type: 'quantitative',
            scale: {
              type: 'linear',
              domain: [-extent, 0, extent],
              range: [COLORS.negative, COLORS.neutral, COLORS.positive],
            },
            legend: { title: 'Return (%)', orient: 'right', direction: 'vertical', format: '.1f' },
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: {
          text: { field: 'returnPct', type: 'quantitative', format: '+.1f' },
          color: {
            condition: { test: `abs(datum.returnPct) > ${extent * 0.6}`, value: 'white' },
            value: '#222',
          },
        },
      },
    ],
  };
}

/** One bar of the walk-forward Gantt chart. */
export interface WindowSpan {
  readonly row: string;
  readonly phase: 'In-sample' | 'Out-of-sample';
  readonly from: number;
  readonly to: number;
  /** Accessible text of the bar, with the dates as given (Vega would format them in local time). */
  readonly description: string;
}

/** A window's label (its parameters and out-of-sample return), written from the start of its row. */
export interface WindowLabel {
  readonly row: string;
  readonly from: number;
  readonly text: string;
  readonly description: string;
}

/** Walk-forward windows: one row per window, in-sample and out-of-sample spans, labelled. */
export function walkForwardChart(spans: readonly WindowSpan[], labels: readonly WindowLabel[]): TopLevelSpec {
  return {
    config: baseConfig,
    width: CHART_WIDTH,
    height: { step: 22 },
    encoding: {
      y: { field: 'row', type: 'nominal', sort: null, axis: { title: null, labelLimit: 180 } },
    },
    layer: [
      {
        data: { values: [...spans] },
        mark: { type: 'bar', cornerRadius: 2 },
        encoding: {
          x: { ...timeAxis, field: 'from' },
          x2: { field: 'to' },
          description: { field: 'description', type: 'nominal' },
          color: {
            field: 'phase',
            type: 'nominal',
            scale: { domain: ['In-sample', 'Out-of-sample'], range: [COLORS.inSample, COLORS.outOfSample] },
            legend: { title: null },
          },
        },
      },
      {
        data: { values: [...labels] },
        mark: { type: 'text', align: 'left', baseline: 'middle', dx: 5, fontSize: 10, color: '#1d2b3a' },
        encoding: {
          x: { ...timeAxis, field: 'from' },
          text: { field: 'text', type: 'nominal' },
          description: { field: 'description', type: 'nominal' },
        },
      },
    ],
  };
}

/** A cell of the parameter surface; null values are left blank. */
export interface SurfaceCell {
  readonly x: number;
  readonly y: number;
  readonly value: number | null;
}

/** The objective over a grid of two parameters; cells without a value stay blank. */
export function parameterSurfaceChart(
  cells: readonly SurfaceCell[],
  names: { readonly x: string; readonly y: string; readonly objective: string },
): TopLevelSpec {
  const xs = [...new Set(cells.map((c) => c.x))].sort((a, b) => a - b);
  const ys = [...new Set(cells.map((c) => c.y))].sort((a, b) => b - a);
  const defined = cells.filter((c) => c.value !== null);
  const values = defined.map((c) => c.value as number);
  const middle = values.length === 0 ? 0 : (Math.min(...values) + Math.max(...values)) / 2;
  const xStep = Math.max(14, Math.min(48, Math.floor(CHART_WIDTH / Math.max(xs.length, 1))));
  const yStep = Math.max(12, Math.min(28, Math.floor(560 / Math.max(ys.length, 1))));
  const writeValues = xs.length <= 16 && ys.length <= 24;
  const cellEncoding = {
    x: { field: 'x', type: 'ordinal', title: names.x, scale: { domain: xs }, axis: { labelAngle: 0 } },
    y: { field: 'y', type: 'ordinal', title: names.y, scale: { domain: ys } },
  } as const;
  return {
    config: baseConfig,
    width: { step: xStep },
    height: { step: yStep },
    data: { values: [...defined] },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 0.5 },
        encoding: {
          ...cellEncoding,
          color: {
            field: 'value',
            type: 'quantitative',
            scale: { scheme: 'viridis' },
            legend: { title: names.objective, orient: 'right', direction: 'vertical' },
          },
        },
      },
      ...(writeValues
        ? [
            {
              mark: { type: 'text' as const, fontSize: 10 },
              encoding: {
                ...cellEncoding,
                text: { field: 'value', type: 'quantitative' as const, format: '.2f' },
                color: {
                  condition: { test: `datum.value < ${middle}`, value: 'white' },
                  value: '#111',
                },
              },
            },
          ]
        : []),
    ],
  };
}

/** A named series of a multi-line chart. */
export interface NamedSeries {
  readonly name: string;
  readonly points: readonly TimePoint[];
}

/** Several series over time: lines, or areas stacked to 100 % (allocation weights). */
export function multiSeriesChart(options: {
  readonly series: readonly NamedSeries[];
  readonly yTitle: string;
  readonly yFormat: string;
  readonly height: number;
  readonly kind: 'line' | 'stacked-area';
}): TopLevelSpec {
  const values = options.series.flatMap((s) => s.points.map((p) => ({ ...p, series: s.name })));
  const stacked = options.kind === 'stacked-area';
  return {
    config: baseConfig,
    width: CHART_WIDTH,
    height: options.height,
    data: { values },
    mark: stacked ? { type: 'area', opacity: 0.85 } : { type: 'line', strokeWidth: 1.4 },
    encoding: {
      x: timeAxis,
      y: {
        field: 'value',
        type: 'quantitative',
        ...(stacked ? { stack: 'zero' } : { scale: { zero: false } }),
        axis: { title: options.yTitle, format: options.yFormat },
      },
      color: {
        field: 'series',
        type: 'nominal',
        scale: { domain: options.series.map((s) => s.name), scheme: 'tableau10' },
        legend: { title: null },
      },
    },
  };
}

/** A correlation matrix as a heatmap from −1 (red) to +1 (green), each cell labelled. */
export function correlationHeatmapChart(
  names: readonly string[],
  matrix: readonly (readonly (number | null)[])[],
): TopLevelSpec {
  const values = names.flatMap((a, i) =>
    names.flatMap((b, j) => {
      const rho = matrix[i]?.[j];
      return rho === null || rho === undefined ? [] : [{ a, b, rho }];
    }),
  );
  const domain = [...names];
  const encoding = {
    x: { field: 'b', type: 'ordinal' as const, title: null, scale: { domain }, axis: { labelAngle: 0 } },
    y: { field: 'a', type: 'ordinal' as const, title: null, scale: { domain } },
  };
  return {
    config: baseConfig,
    width: { step: 64 },
    height: { step: 40 },
    data: { values },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          ...encoding,
          color: {
            field: 'rho',
            type: 'quantitative',
            scale: { domain: [-1, 0, 1], range: [COLORS.negative, COLORS.neutral, COLORS.positive] },
            legend: { title: 'ρ', orient: 'right', direction: 'vertical' },
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: { ...encoding, text: { field: 'rho', type: 'quantitative', format: '.2f' } },
      },
    ],
  };
}
