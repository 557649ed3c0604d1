import { afterEach, describe, expect, it } from 'vitest';
import type { IntentRecord, StateStore } from '../../shared/core/ports/state-store.js';
import type { LiveContext } from '../../shared/live/context.js';
import { executeOrders } from '../../shared/live/execute-orders.js';
import { generateSignals } from '../../shared/live/generate-signals.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { EXECUTE_ORDERS_TIMEOUT_SECONDS } from '../../shared/live/steps.js';
import { postOrders, startLiveStack } from '../helpers/live-stack.js';

/**
 * Two execute-orders runs of the same scheduled time at once (EventBridge Scheduler delivers at
 * least once), on the real local servers (paper broker over HTTP, dynalite, redis-server behind the
 * Upstash bridge): the race made certain. Run A pauses between its claim of an intent (recorded →
 * submitted) and its POST while run B runs through; B must leave A's claim to A, so the broker
 * receives one POST per intent (no duplicate for it to refuse). docs/live.md, "State".
 */

// 2021-03-18 (daylight saving time: 09:00 New York = 13:00Z): the config enters SPY at this open.
const DAY = '2021-03-18';
const at = (hhmm: string) =>
  `${DAY}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

type Stack = Awaited<ReturnType<typeof startLiveStack>>;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/**
 * The context whose store runs `meanwhile` right after its first successful claim, before the claim
 * returns to execute-orders (so before the intent's POST); `claimed` receives that intent.
 */
function pauseAfterFirstClaim(
  ctx: LiveContext,
  meanwhile: (claimed: IntentRecord) => Promise<void>,
): LiveContext {
  const store: StateStore = Object.create(ctx.store);
  let paused = false;
  store.claimIntent = async (date, id, claim) => {
    const result = await ctx.store.claimIntent(date, id, claim);
    if (!paused && !('conflict' in result)) {
      paused = true;
      await meanwhile(result);
    }
    return result;
  };
  return { ...ctx, store };
}

async function morning(s: Stack): Promise<readonly IntentRecord[]> {
  await marketOpenCheck(s.ctx, at('09:00'));
  const { intents } = await generateSignals(s.ctx, at('09:10'));
  if (intents.length === 0) throw new Error('expected recorded intents');
  return intents;
}

describe('two execute-orders runs of the same scheduled time at once', () => {
  for (const withCache of [true, false]) {
    it(`run B leaves the intent run A claimed and has not sent yet to A: one POST per intent (${withCache ? 'the lock reentrant for the scheduled run' : 'no cache, no lock'})`, async () => {
      stack = await startLiveStack({ startTime: at('08:00'), withCache });
      const s = stack;
      const intents = await morning(s);
      let claimedByA: IntentRecord | undefined;
      let runB: Awaited<ReturnType<typeof executeOrders>> | undefined;
      const a = pauseAfterFirstClaim(s.ctx, async (claimed) => {
        claimedByA = claimed;
        // Run B, the same schedule delivered again, runs through while A holds its claim unsent.
        runB = await executeOrders(s.ctx, at('09:15'));
      });
      const runA = await executeOrders(a, at('09:15'));
      if (claimedByA === undefined || runB === undefined) throw new Error('expected run B inside run A');
      expect(runB.status).toBe('executed');
      expect(runB.intents.map((i) => i.clientOrderId)).not.toContain(claimedByA.clientOrderId);
      expect(runA.intents.find((i) => i.clientOrderId === claimedByA?.clientOrderId)?.status).toBe(
        'accepted',
      );
      expect(
        s.logs.filter(
          (l) =>
            l.startsWith('INFO intent claimed by another run') &&
            l.includes(claimedByA?.clientOrderId ?? '?'),
        ),
      ).toHaveLength(1);
      // One POST per intent, none refused by the broker as a duplicate client order id.
      expect(postOrders(s)).toHaveLength(intents.length);
      expect(postOrders(s).every((r) => r.status === 200)).toBe(true);
      expect(await s.ctx.broker.listOrders({ status: 'all' })).toHaveLength(intents.length);
      for (const intent of intents) {
        expect((await s.ctx.store.getIntent(DAY, intent.clientOrderId))?.status).toBe('accepted');
      }
    });
  }

  it('a claim older than the function timeout is no longer leased: its claimant is dead, the next run sends it once', async () => {
    stack = await startLiveStack({ startTime: at('08:00') });
    const s = stack;
    const intents = await morning(s);
    // Run A claims at 09:15 and never comes back (its Lambda timed out); its lock stays.
    let claimedByA: IntentRecord | undefined;
    let claimed: () => void = () => {};
    const firstClaim = new Promise<void>((resolve) => {
      claimed = resolve;
    });
    const a = pauseAfterFirstClaim(s.ctx, (intent) => {
      claimedByA = intent;
      claimed();
      return new Promise<void>(() => {});
    });
    void executeOrders(a, at('09:15'));
    await firstClaim;
    if (claimedByA === undefined) throw new Error('expected run A to claim');
    const leaseEnd = Date.parse(claimedByA.updatedAt) + EXECUTE_ORDERS_TIMEOUT_SECONDS * 1000;
    expect(claimedByA.updatedAt).toBe(at('09:15'));

    // One second before the lease ends, A may still be alive: its claim is left to it.
    s.alpaca.setTime(new Date(leaseEnd - 1000).toISOString());
    await executeOrders(s.ctx, at('09:15'));
    expect(postOrders(s)).toHaveLength(intents.length - 1);
    expect((await s.ctx.store.getIntent(DAY, claimedByA.clientOrderId))?.status).toBe('submitted');

    // From the lease's end on, no run that claimed it can still be alive: sent, once.
    s.alpaca.setTime(new Date(leaseEnd).toISOString());
    await executeOrders(s.ctx, at('09:15'));
    expect(postOrders(s)).toHaveLength(intents.length);
    expect(postOrders(s).every((r) => r.status === 200)).toBe(true);
    for (const intent of intents) {
      expect((await s.ctx.store.getIntent(DAY, intent.clientOrderId))?.status).toBe('accepted');
    }
  });
});
