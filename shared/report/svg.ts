/** Renders a Vega-Lite spec to an SVG string in Node, with no DOM, canvas or network. */
import type { TopLevelSpec } from 'vega-lite';
import { ChartRenderError } from './errors.js';

const ID_DEFINITION = /\sid="([^"]+)"/g;
const ID_REFERENCE = /(\sid="|url\(#|href="#)([^")]+)/g;

type ChartLibraries = readonly [typeof import('vega'), typeof import('vega-lite')];
let libraries: Promise<ChartLibraries> | undefined;

/**
 * Vega and Vega-Lite, imported on first use: loading them takes a few hundred milliseconds, which a
 * command that draws no chart should not pay, and which the research job overlaps with its
 * walk-forward.
 */
export function loadChartLibraries(): Promise<ChartLibraries> {
  libraries ??= Promise.all([import('vega'), import('vega-lite')]);
  return libraries;
}

/**
 * SVGs already rendered, by spec: a chart whose spec equals an earlier one's is not rendered again.
 * The research job renders the charts that depend on the backtest alone while its walk-forward
 * runs, then the whole report with the same cache. The cached markup is the renderer's, before
 * {@link namespaceIds}, so a hit gives exactly the SVG a fresh render would.
 */
export class ChartCache {
  private readonly svgs = new Map<string, Promise<string>>();

  /** The SVG of `spec`, rendered by `render` on the first request only. */
  get(spec: TopLevelSpec, render: () => Promise<string>): Promise<string> {
    const key = specKey(spec);
    let svg = this.svgs.get(key);
    if (svg === undefined) {
      svg = render();
      this.svgs.set(key, svg);
    }
    return svg;
  }

  get size(): number {
    return this.svgs.size;
  }
}

/** The spec as JSON, with the values JSON would fold into null (NaN, ±Infinity) kept distinct. */
function specKey(spec: TopLevelSpec): string {
  return JSON.stringify(spec, (_key, value: unknown) =>
    typeof value === 'number' && !Number.isFinite(value) ? `\u0000${value}` : value,
  );
}

async function renderRawSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await loadChartLibraries();
  let view: import('vega').View | undefined;
  try {
    const compiled = compile(spec).spec;
    view = new vega.View(vega.parse(compiled), { renderer: 'none' });
    return await view.toSVG();
  } finally {
    view?.finalize();
  }
}

/**
 * Compiles `spec` with Vega-Lite, runs it in a headless Vega view and returns the SVG markup.
 *
 * Vega numbers clip paths and gradients with process-wide counters, so the same chart gets
 * different ids on every call and two inline SVGs can clash. Every id the SVG defines is renamed
 * to `<idPrefix>-<n>` in order of appearance, which makes the output depend on its input only.
 * With a `cache`, a spec rendered before is taken from it.
 *
 * @throws ChartRenderError when compiling or rendering fails, with the cause attached.
 */
export async function renderSvg(
  chart: string,
  spec: TopLevelSpec,
  idPrefix: string,
  cache?: ChartCache,
): Promise<string> {
  try {
    const svg = await (cache === undefined ? renderRawSvg(spec) : cache.get(spec, () => renderRawSvg(spec)));
    return namespaceIds(svg, idPrefix);
  } catch (error) {
    throw new ChartRenderError(chart, { cause: error });
  }
}

/** Renames every id defined in `svg`, and the references to it, to `<prefix>-<n>`. */
export function namespaceIds(svg: string, prefix: string): string {
  const renamed = new Map<string, string>();
  for (const match of svg.matchAll(ID_DEFINITION)) {
    const id = match[1] as string;
    if (!renamed.has(id)) renamed.set(id, `${prefix}-${renamed.size + 1}`);
  }
  if (renamed.size === 0) return svg;
  return svg.replace(ID_REFERENCE, (whole, lead: string, id: string) => {
    const next = renamed.get(id);
    return next === undefined ? whole : `${lead}${next}`;
  });
}
