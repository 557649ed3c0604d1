import { describe, expect, it } from 'vitest';
import { InvalidParameterError } from '../../../shared/core/errors.js';
import { orderStyle } from '../../../shared/core/live/order-style.js';
import type { LiveContext } from '../../../shared/live/context.js';
import { CUTOFF_RECHECK_MARGIN_MS, cutoffRecheck, cutoffSkippedAlert } from '../../../shared/live/cutoff.js';
import { EXECUTE_ORDERS_TIMEOUT_SECONDS } from '../../../shared/live/steps.js';

// 2021-03-18, New York on daylight saving time: 09:28 = 13:28Z.
const DAY = '2021-03-18';
const equity = orderStyle({ assetClass: 'equity', live: {} } as Parameters<typeof orderStyle>[0]);

/** A context whose clock port answers `times` in turn (the last one from then on), counting its calls. */
function clock(...times: string[]) {
  let calls = 0;
  const ctx = {
    now: async () => times[Math.min(calls++, times.length - 1)] as string,
  } as unknown as LiveContext;
  return { ctx, calls: () => calls };
}

describe('cutoffRecheck: the clock asked again before each send near the cutoff', () => {
  it('far from the cutoff it never asks the clock', async () => {
    const c = clock(`${DAY}T13:29:00.000Z`);
    const check = cutoffRecheck(c.ctx, DAY, `${DAY}T13:15:00.000Z`, equity);
    expect(await check()).toBe(true);
    expect(await check()).toBe(true);
    expect(c.calls()).toBe(0);
  });

  it('within the margin it asks at each call; once past the cutoff it stays past without asking', async () => {
    expect(CUTOFF_RECHECK_MARGIN_MS).toBe(EXECUTE_ORDERS_TIMEOUT_SECONDS * 1000);
    const c = clock(`${DAY}T13:27:59.000Z`, `${DAY}T13:28:01.000Z`, `${DAY}T13:27:00.000Z`);
    const check = cutoffRecheck(c.ctx, DAY, `${DAY}T13:27:58.000Z`, equity);
    expect(await check()).toBe(true);
    expect(await check()).toBe(false);
    // A clock read later that runs behind does not reopen the window.
    expect(await check()).toBe(false);
    expect(c.calls()).toBe(2);
  });

  it('takes a rate slot before each ask of the clock, none when it does not ask', async () => {
    const c = clock(`${DAY}T13:27:59.000Z`, `${DAY}T13:28:01.000Z`);
    const order: string[] = [];
    const slot = async () => {
      order.push(`slot before ask ${c.calls() + 1}`);
    };
    const far = cutoffRecheck(c.ctx, DAY, `${DAY}T13:15:00.000Z`, equity, slot);
    expect(await far()).toBe(true);
    expect(order).toEqual([]);
    const check = cutoffRecheck(c.ctx, DAY, `${DAY}T13:27:58.000Z`, equity, slot);
    expect(await check()).toBe(true);
    expect(await check()).toBe(false);
    expect(await check()).toBe(false);
    expect(order).toEqual(['slot before ask 1', 'slot before ask 2']);
    expect(c.calls()).toBe(2);
  });

  it('a run checked a timeout before the cutoff asks too: it may still be sending when the cutoff passes', async () => {
    const c = clock(`${DAY}T13:28:10.000Z`);
    const at = new Date(Date.parse(`${DAY}T13:28:00.000Z`) - CUTOFF_RECHECK_MARGIN_MS + 1000).toISOString();
    expect(await cutoffRecheck(c.ctx, DAY, at, equity)()).toBe(false);
    expect(c.calls()).toBe(1);
  });

  it('a checked time at or past the cutoff is past at once; no clock port: the checked time only', async () => {
    const c = clock(`${DAY}T13:20:00.000Z`);
    expect(await cutoffRecheck(c.ctx, DAY, `${DAY}T13:28:00.000Z`, equity)()).toBe(false);
    expect(c.calls()).toBe(0);
    expect(await cutoffRecheck({} as LiveContext, DAY, `${DAY}T13:27:59.000Z`, equity)()).toBe(true);
  });

  it('a clock answer that is not an instant is refused', async () => {
    const c = clock('not a time');
    await expect(cutoffRecheck(c.ctx, DAY, `${DAY}T13:27:30.000Z`, equity)()).rejects.toThrow(
      InvalidParameterError,
    );
  });

  it('the crypto bot: within the margin of 01:00 UTC of its session day', async () => {
    const crypto = orderStyle({ assetClass: 'crypto', live: {} } as Parameters<typeof orderStyle>[0]);
    const c = clock('2026-01-05T01:00:00.000Z');
    const check = cutoffRecheck(c.ctx, '2026-01-05', '2026-01-05T00:59:30.000Z', crypto);
    expect(await check()).toBe(false);
    expect(c.calls()).toBe(1);
  });
});

describe('cutoffSkippedAlert: the orders decided at the close that the cutoff kept from being sent', () => {
  it("is critical, names the day and the bot's orders (market-on-open for equity, the daily close's for crypto), and carries the text as given", () => {
    const text = 'The cutoff passed before they were sent: qs-1, qs-2';
    expect(cutoffSkippedAlert(equity, DAY, text)).toEqual({
      subject: `Market-on-open orders skipped on ${DAY}`,
      severity: 'critical',
      text,
    });
    const crypto = orderStyle({ assetClass: 'crypto', live: {} } as Parameters<typeof orderStyle>[0]);
    expect(cutoffSkippedAlert(crypto, '2026-01-05', text)).toEqual({
      subject: 'Daily close orders skipped on 2026-01-05',
      severity: 'critical',
      text,
    });
  });
});
