/** Renders a Vega-Lite spec to an SVG string in Node, with no DOM, canvas or network. */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { ChartRenderError } from './errors.js';

const ID_DEFINITION = /\sid="([^"]+)"/g;
const ID_REFERENCE = /(\sid="|url\(#|href="#)([^")]+)/g;

/**
 * Compiles `spec` with Vega-Lite, runs it in a headless Vega view and returns the SVG markup.
 *
 * Vega numbers clip paths and gradients with process-wide counters, so the same chart gets
 * different ids on every call and two inline SVGs can clash. Every id the SVG defines is renamed
 * to `<idPrefix>-<n>` in order of appearance, which makes the output depend on its input only.
 *
 * @throws ChartRenderError when compiling or rendering fails, with the cause attached.
 */
export async function renderSvg(chart: string, spec: TopLevelSpec, idPrefix: string): Promise<string> {
  let view: vega.View | undefined;
  try {
    const compiled = compile(spec).spec;
    view = new vega.View(vega.parse(compiled), { renderer: 'none' });
    return namespaceIds(await view.toSVG(), idPrefix);
  } catch (error) {
    throw new ChartRenderError(chart, { cause: error });
  } finally {
    view?.finalize();
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
