import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { localLambdaContext } from '../../shared/adapters/local/lambda-context.js';
import { LOCAL_KEYS, LOCAL_UPSTASH_TOKEN } from '../../shared/adapters/local/live-stack.js';
import { clientOrderId } from '../../shared/core/live/orders.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { riskCheck } from '../../shared/live/risk-check.js';
import { startLiveStack } from '../helpers/live-stack.js';
import { captureProcessOutput } from '../helpers/process-output.js';

// 2021-04-05, New York on daylight saving time (09:00 = 13:00Z): QQQ is entered at this open.
const DAY = '2021-04-05';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;
/** CloudWatch writes its times with a `+0000` offset. */
const cw = (iso: string) => iso.replace('Z', '+0000');

const ACCOUNT = '111122223333';

/** An alarm action's event as CloudWatch sends it to Lambda (a metric alarm). */
function alarmEvent(
  name: string,
  value: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA',
  time: string,
  previous: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA',
) {
  return {
    source: 'aws.cloudwatch',
    alarmArn: `arn:aws:cloudwatch:us-east-1:${ACCOUNT}:alarm:${name}`,
    accountId: ACCOUNT,
    time: cw(time),
    region: 'us-east-1',
    alarmData: {
      alarmName: name,
      state: {
        value,
        reason:
          value === 'ALARM'
            ? 'Threshold Crossed: 1 out of the last 1 datapoints [5.4 (05/04/21 13:20:00)] was greater than or equal to the threshold (5.0) (minimum 1 datapoint for OK -> ALARM transition).'
            : 'Threshold Crossed: 1 out of the last 1 datapoints [0.8 (05/04/21 13:20:00)] was not greater than or equal to the threshold (5.0).',
        reasonData:
          '{"version":"1.0","queryDate":"2021-04-05T13:20:00.000+0000","startDate":"2021-04-05T13:15:00.000+0000","statistic":"Maximum","period":300,"recentDatapoints":[5.4],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2021-04-05T13:15:00.000+0000","sampleCount":1.0,"value":5.4}]}',
        timestamp: cw(time),
      },
      previousState: {
        value: previous,
        reason: 'Threshold Crossed: no datapoints were received for 1 period.',
        timestamp: cw(at('09:00')),
      },
      configuration: {
        description: 'QuantShift paper: daily loss at or above the limit',
        metrics: [
          {
            id: '1234e046-06f0-a3da-9534-EXAMPLEe4c',
            metricStat: {
              metric: {
                namespace: 'QuantShift',
                name: 'dailyLossPct',
                dimensions: { service: 'quantshift-live' },
              },
              period: 300,
              stat: 'Maximum',
            },
            returnData: true,
          },
        ],
      },
    },
  };
}

let stack: Awaited<ReturnType<typeof startLiveStack>>;
let output: () => string = () => '';
beforeAll(async () => {
  stack = await startLiveStack({ startTime: at('08:00'), withCache: false });
  output = captureProcessOutput();
});
afterAll(async () => {
  vi.restoreAllMocks();
  delete process.env.KILL_SWITCH_FLATTEN;
  await stack.close();
});

const lambdaContext = () => localLambdaContext('kill-switch', `req-${Math.random().toString(16).slice(2)}`);
const writes = () =>
  stack.alpaca.requestLog.filter(
    (r) => (r.method === 'POST' && r.path === '/v2/orders') || r.method === 'DELETE',
  ).length;

describe('the kill-switch Lambda handler, invoked by a CloudWatch alarm action', () => {
  it('ignores OK, halts on ALARM once per alarm transition, flattens when told to, and logs no secret', async () => {
    const { ctx } = stack;
    const { handler } = await import('../../functions/kill-switch/handler.js');
    for (const [time, step] of [
      ['09:00', marketOpenCheck],
      ['09:10', generateSignals],
      ['09:15', executeOrders],
    ] as const) {
      stack.alpaca.setTime(at(time));
      await step(ctx, at(time));
    }
    const entry = clientOrderId({
      stage: 'paper',
      strategy: ctx.config.name,
      symbol: 'QQQ',
      date: DAY,
      purpose: 'entry',
    });
    expect((await ctx.broker.getOrderByClientOrderId(entry))?.status).toBe('accepted');
    stack.alpaca.setTime(at('09:20'));

    // Back to OK, or no data: logged and ignored.
    const loss = 'quantshift-paper-daily-loss';
    expect(await handler(alarmEvent(loss, 'OK', at('09:19'), 'ALARM'), lambdaContext())).toEqual({
      action: 'ignored',
      alarmName: loss,
      state: 'OK',
    });
    expect(
      await handler(alarmEvent(loss, 'INSUFFICIENT_DATA', at('09:18'), 'OK'), lambdaContext()),
    ).toMatchObject({ action: 'ignored', state: 'INSUFFICIENT_DATA' });
    expect(output()).toMatch(/alarm is not in ALARM: the kill switch does nothing/);
    expect((await ctx.store.getRiskState())?.state.killSwitch ?? null).toBeNull();
    expect((await ctx.broker.getOrderByClientOrderId(entry))?.status).toBe('accepted');

    // Into ALARM: halted, the open entry cancelled; a duplicated delivery returns the first result.
    const event = alarmEvent(loss, 'ALARM', at('09:20'), 'OK');
    const first = await handler(event, lambdaContext());
    expect(first).toMatchObject({
      action: 'halt',
      alarmName: loss,
      flatten: false,
      day: DAY,
      halted: true,
      killSwitch: { by: `alarm:${loss}`, since: Date.parse(at('09:20')) },
      entriesCancelled: expect.arrayContaining([entry]),
      exits: [],
    });
    const writesAfterFirst = writes();
    expect(await handler(event, lambdaContext())).toEqual(first);
    expect(writes()).toBe(writesAfterFirst);
    expect((await ctx.broker.getOrderByClientOrderId(entry))?.status).toBe('canceled');
    const risk = await ctx.store.getRiskState();
    expect(risk?.state.killSwitch?.reason).toMatch(/^alarm quantshift-paper-daily-loss: Threshold Crossed/);
    const audit = await ctx.store.listAudit(DAY, DAY);
    expect(audit).toEqual([
      expect.objectContaining({
        action: 'halt',
        by: `alarm:${loss}`,
        details: expect.objectContaining({
          alarmArn: event.alarmArn,
          previousState: 'OK',
          accountId: ACCOUNT,
        }),
      }),
    ]);
    expect(output().match(/\[critical\] Kill switch: trading halted/g)).toHaveLength(1);

    // A second alarm later in the day, with KILL_SWITCH_FLATTEN=true: every position sold once.
    stack.alpaca.setTime(at('09:45'));
    await riskCheck(ctx, at('09:45'));
    const held = await ctx.broker.getPositions();
    stack.alpaca.setTime(at('10:00'));
    process.env.KILL_SWITCH_FLATTEN = 'true';
    const drawdown = await handler(
      alarmEvent('quantshift-paper-drawdown', 'ALARM', at('10:00'), 'OK'),
      lambdaContext(),
    );
    expect(drawdown).toMatchObject({ action: 'halt', flatten: true, halted: false });
    expect(drawdown.action === 'halt' ? drawdown.exits : []).toHaveLength(held.length);
    expect(await ctx.broker.getPositions()).toEqual([]);

    process.env.KILL_SWITCH_FLATTEN = 'maybe';
    await expect(
      handler(alarmEvent('quantshift-paper-drawdown', 'ALARM', at('10:05'), 'OK'), lambdaContext()),
    ).rejects.toThrow(/KILL_SWITCH_FLATTEN must be "true" or "false"/);
    delete process.env.KILL_SWITCH_FLATTEN;

    // Not an alarm event: one clear error naming the field.
    await expect(
      handler({ source: 'aws.events', alarmArn: 'arn:aws:cloudwatch:x' }, lambdaContext()),
    ).rejects.toThrow(/kill-switch: bad event: .*source/);

    for (const secret of [LOCAL_KEYS.secret, LOCAL_KEYS.keyId, LOCAL_UPSTASH_TOKEN])
      expect(output()).not.toContain(secret);
  });
});
