import { afterAll, describe, expect, it } from 'vitest';
import { type CfnResource, removeTestOutdirs, synthQuantShift } from './synth.js';

afterAll(removeTestOutdirs);

/** The dashboard body of a synthesized monitoring stack, parsed (deploy-time tokens as `TOKEN`). */
function dashboardBody(stack: ReturnType<typeof synthQuantShift>) {
  const resources = stack.monitoringTemplate.toJSON().Resources as Record<string, CfnResource>;
  const dashboard = Object.values(resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard');
  const raw = dashboard?.Properties.DashboardBody as string | { 'Fn::Join': [string, unknown[]] };
  const text =
    typeof raw === 'string'
      ? raw
      : raw['Fn::Join'][1].map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('');
  return JSON.parse(text) as {
    widgets: { properties: { title?: string; metrics?: unknown[][] } }[];
  };
}

/** Each metric line of a widget: its name, its Sleeve dimension and its label. */
function lines(body: ReturnType<typeof dashboardBody>, title: string) {
  const widget = body.widgets.find((w) => w.properties.title === title);
  if (widget === undefined) throw new Error(`no widget "${title}"`);
  return (widget.properties.metrics ?? []).map((m) => {
    const fields = m.filter((x) => typeof x === 'string') as string[];
    const options = m.find((x) => typeof x === 'object') as { label?: string; stat?: string } | undefined;
    return {
      namespace: fields[0],
      name: fields[1],
      dimensions: Object.fromEntries(
        fields.slice(2).flatMap((v, i, all) => (i % 2 === 0 ? [[v, all[i + 1]]] : [])),
      ),
      label: options?.label,
    };
  });
}

describe('the dashboard’s sleeve widgets', () => {
  it('has equity, day P&L, heat and orders per sleeve for config/multi-strategy.yaml', () => {
    const stack = synthQuantShift('paper', { config: 'config/multi-strategy.yaml' });
    const body = dashboardBody(stack);
    const ids = ['trend', 'rsi', 'breakout', 'bollinger', 'volume'];
    for (const [title, metric] of [
      ['Equity per sleeve ($)', 'SleeveEquity'],
      ['Day P&L per sleeve ($)', 'SleeveDayPnl'],
      ['Heat per sleeve (% of account equity)', 'SleeveHeatPct'],
      ['Orders per sleeve per day', 'SleeveOrders'],
    ] as const) {
      const metrics = lines(body, title);
      expect(metrics.map((m) => m.label)).toEqual(ids);
      for (const [i, m] of metrics.entries()) {
        expect(m).toMatchObject({
          namespace: 'QuantShift',
          name: metric,
          dimensions: { service: 'quantshift-live', stage: 'paper', Sleeve: ids[i] },
        });
      }
    }
    // Alarms stay account-wide: none watches a sleeve metric.
    const resources = stack.monitoringTemplate.toJSON().Resources as Record<string, CfnResource>;
    const alarms = Object.values(resources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm');
    expect(alarms.length).toBeGreaterThan(0);
    expect(JSON.stringify(alarms)).not.toContain('Sleeve');
  }, 120_000);

  it('has one line per widget, the config’s name, for a single-strategy config', () => {
    const body = dashboardBody(synthQuantShift('paper'));
    expect(lines(body, 'Equity per sleeve ($)').map((m) => [m.label, m.dimensions.Sleeve])).toEqual([
      ['ma-crossover-atr', 'ma-crossover-atr'],
    ]);
  }, 120_000);
});
