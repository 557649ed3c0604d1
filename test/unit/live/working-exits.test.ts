import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientOrderId } from '../../../shared/core/live/orders.js';
import { type IntentRecord, UNASSIGNED_SLEEVE } from '../../../shared/core/ports/state-store.js';
import {
  flattenSequence,
  killSwitchFlattenAgain,
  killSwitchFlattenDue,
  killSwitchFlattenToSend,
  workingExitQty,
} from '../../../shared/live/stops.js';
import { intentRecord as intent, brokerOrder as order } from '../../helpers/live-records.js';

const options = { ownId: 'own', maySend: () => true };

describe("workingExitQty: what today's exits of a position can still sell", () => {
  it("counts an exit's unfilled shares as the broker has them, or as its intent says when not at the broker", () => {
    const intents = [
      intent({ clientOrderId: 'a', qty: 10, filledQty: 2, status: 'partially_filled' }),
      intent({ clientOrderId: 'b', qty: 5, status: 'submitted' }),
    ];
    // `a` is at the broker with 4 filled by now: its 6 left count, not the intent's 8.
    const open = [order({ clientOrderId: 'a', qty: 10, filledQty: 4, status: 'partially_filled' })];
    expect(workingExitQty('SPY', 'sell', intents, open, options)).toBe(6 + 5);
  });

  it('a finished exit, an entry, a leg, the bucket, another symbol or side, a stop: nothing', () => {
    const intents = [
      intent({ clientOrderId: 'f', status: 'filled', filledQty: 10 }),
      intent({ clientOrderId: 'c', status: 'cancelled', filledQty: 4 }),
      intent({ clientOrderId: 'e', status: 'expired' }),
      intent({ clientOrderId: 'n', purpose: 'entry', side: 'buy' }),
      intent({ clientOrderId: 'l', leg: true, status: 'recorded' }),
      intent({ clientOrderId: 'u', sleeve: UNASSIGNED_SLEEVE }),
      intent({ clientOrderId: 'q', symbol: 'QQQ' }),
    ];
    const open = [
      order({ clientOrderId: 'u' }),
      order({ clientOrderId: 's', type: 'stop', stopPrice: 90 }),
      order({ clientOrderId: 'q', symbol: 'QQQ' }),
      order({ clientOrderId: 'b', side: 'buy' }),
    ];
    expect(workingExitQty('SPY', 'sell', intents, open, options)).toBe(0);
  });

  it('an order no intent knows counts in full; one that is done does not', () => {
    const open = [
      order({ clientOrderId: 'manual', qty: 7 }),
      order({ clientOrderId: 'gone', qty: 7, status: 'canceled' }),
    ];
    expect(workingExitQty('SPY', 'sell', [], open, options)).toBe(7);
  });

  it("the caller's own exit counts only while at the broker; an unsent one only while it may still be sent", () => {
    const own = intent({ clientOrderId: 'own', status: 'recorded' });
    const opg = intent({ clientOrderId: 'opg', status: 'recorded', timeInForce: 'opg' });
    const maySend = (i: IntentRecord) => i.timeInForce !== 'opg';
    expect(workingExitQty('SPY', 'sell', [own, opg], [], { ownId: 'own', maySend })).toBe(0);
    expect(workingExitQty('SPY', 'sell', [own, opg], [], { ownId: 'own', maySend: () => true })).toBe(10);
    expect(
      workingExitQty('SPY', 'sell', [own], [order({ clientOrderId: 'own' })], { ownId: 'own', maySend }),
    ).toBe(10);
  });

  it("a sleeve's share of an exit, capped at what the exit can still sell", () => {
    const intents = [intent({ clientOrderId: 'net', qty: 8, filledQty: 5, status: 'partially_filled' })];
    expect(workingExitQty('SPY', 'sell', intents, [], { ...options, share: () => 6 })).toBe(3);
    expect(workingExitQty('SPY', 'sell', intents, [], { ...options, share: () => 2 })).toBe(2);
    expect(workingExitQty('SPY', 'sell', intents, [], { ...options, share: () => 0 })).toBe(0);
  });
});

describe("killSwitchFlattenAgain: the kill switch's flatten that ended unfilled, sent again", () => {
  const base = 'qs-0000abcd-SPY-20210318-flatten';
  /** The halt's `since` the kill switch's flatten is stamped with. */
  const SINCE = Date.parse('2021-03-18T14:00:00Z');
  const flatten = (over: Partial<IntentRecord>) =>
    intent({
      clientOrderId: base,
      killSwitchFlatten: SINCE,
      brokerOrderId: 'b-1',
      reason: 'kill switch: test',
      ...over,
    });

  it('sends the next number after the last one ended unfilled (cancelled, rejected, expired, partly filled)', () => {
    for (const status of ['cancelled', 'rejected', 'expired'] as const) {
      expect(killSwitchFlattenAgain([flatten({ status })], base, SINCE)).toMatchObject({
        id: `${base}-2`,
        sequence: 2,
        ended: { clientOrderId: base, status },
      });
    }
    const partly = flatten({ status: 'cancelled', filledQty: 4 });
    expect(killSwitchFlattenAgain([partly], base, SINCE)?.id).toBe(`${base}-2`);
    // A rejection's reason replaces the kill switch's: the mark says whose flatten it was.
    const resent = [
      flatten({ status: 'rejected', reason: 'insufficient qty' }),
      flatten({ clientOrderId: `${base}-2`, status: 'cancelled' }),
    ];
    expect(killSwitchFlattenAgain(resent, base, SINCE)).toMatchObject({ id: `${base}-3`, sequence: 3 });
  });

  it('a re-send not at the broker yet (a check died) is sent under its own id', () => {
    const intents = [
      flatten({ clientOrderId: `${base}-2`, status: 'recorded' }),
      flatten({ status: 'cancelled' }),
    ];
    expect(killSwitchFlattenAgain(intents, base, SINCE)).toMatchObject({
      id: `${base}-2`,
      ended: { clientOrderId: base },
    });
  });

  it('a superseded (skipped) re-send whose successor was never recorded (the check failed after the settle): sent again after the highest number', () => {
    const intents = [
      flatten({ status: 'cancelled' }),
      flatten({
        clientOrderId: `${base}-2`,
        status: 'skipped',
        reason: 'superseded: recorded for 10, 4 left',
      }),
    ];
    expect(killSwitchFlattenAgain(intents, base, SINCE)).toMatchObject({
      id: `${base}-3`,
      sequence: 3,
      ended: { clientOrderId: base, status: 'cancelled' },
    });
    // Its successor recorded and not sent (the check died again): sent under its own id.
    const successor = [...intents, flatten({ clientOrderId: `${base}-3`, status: 'recorded', qty: 4 })];
    expect(killSwitchFlattenAgain(successor, base, SINCE)).toMatchObject({
      id: `${base}-3`,
      ended: { clientOrderId: base },
    });
    // Its successor working or filled: nothing.
    const working = [...intents, flatten({ clientOrderId: `${base}-3`, status: 'accepted', qty: 4 })];
    expect(killSwitchFlattenAgain(working, base, SINCE)).toBeNull();
    // A skipped day flatten (sequence 1) is not a superseded re-send: nothing to send again.
    expect(killSwitchFlattenAgain([flatten({ status: 'skipped' })], base, SINCE)).toBeNull();
  });

  it('nothing while the kill switch is off, its flatten works or filled, or the flatten is not the kill switch’s', () => {
    expect(killSwitchFlattenAgain([flatten({ status: 'cancelled' })], base, null)).toBeNull();
    expect(killSwitchFlattenAgain([flatten({ status: 'accepted' })], base, SINCE)).toBeNull();
    expect(killSwitchFlattenAgain([flatten({ status: 'recorded' })], base, SINCE)).toBeNull();
    expect(killSwitchFlattenAgain([flatten({ status: 'filled', filledQty: 10 })], base, SINCE)).toBeNull();
    const riskChecks = intent({
      clientOrderId: base,
      status: 'cancelled',
      reason: 'daily loss breaker: flatten',
    });
    expect(killSwitchFlattenAgain([riskChecks], base, SINCE)).toBeNull();
    const otherSymbol = flatten({ clientOrderId: 'qs-0000abcd-QQQ-20210318-flatten', status: 'cancelled' });
    expect(killSwitchFlattenAgain([otherSymbol], base, SINCE)).toBeNull();
  });

  it('nothing under another halt: a resume, then a plain halt later the same day (a new since)', () => {
    const later = SINCE + 3_600_000;
    expect(killSwitchFlattenAgain([flatten({ status: 'rejected' })], base, later)).toBeNull();
    const intents = [
      flatten({ clientOrderId: `${base}-2`, status: 'recorded' }),
      flatten({ status: 'cancelled' }),
    ];
    expect(killSwitchFlattenAgain(intents, base, later)).toBeNull();
    expect(killSwitchFlattenAgain([flatten({ status: 'rejected' })], base, SINCE)?.since).toBe(SINCE);
  });

  it('an expiry or cancel with no broker order id (a lost submit answer, the lookup found nothing) is not taken as unsold', () => {
    for (const status of ['expired', 'cancelled'] as const)
      expect(killSwitchFlattenAgain([flatten({ status, brokerOrderId: undefined })], base, SINCE)).toBeNull();
    expect(
      killSwitchFlattenAgain([flatten({ status: 'rejected', brokerOrderId: undefined })], base, SINCE)?.id,
    ).toBe(`${base}-2`);
  });
});

describe("flattenSequence: the number of a member of the day's flatten series", () => {
  const base = 'qs-0000abcd-SPY-20210318-flatten';

  it('1 for the day id, n for `<base>-<n>`, null for anything else', () => {
    expect(flattenSequence(base, base)).toBe(1);
    expect(flattenSequence(`${base}-2`, base)).toBe(2);
    expect(flattenSequence(`${base}-17`, base)).toBe(17);
    for (const other of [
      `${base}-`,
      `${base}-0`,
      `${base}-x`,
      `${base}-2a`,
      `${base}-1.5`,
      `${base}--2`,
      `${base}- 2`,
      `${base}-1e3`,
      `${base}2`,
      'qs-0000abcd-SPY-20210318-exit',
      'qs-0000abcd-SPYX-20210318-flatten-2',
    ])
      expect(flattenSequence(other, base), other).toBeNull();
  });

  it('reads back the number clientOrderId writes for every re-send, and no other suffix', () => {
    const stage = 'paper';
    const of = (sequence?: number) =>
      clientOrderId({
        stage,
        strategy: 'main',
        symbol: 'SPY',
        date: '2021-03-18',
        purpose: 'flatten',
        sequence,
      });
    fc.assert(fc.property(fc.integer({ min: 2, max: 1_000_000 }), (n) => flattenSequence(of(n), of()) === n));
    fc.assert(
      fc.property(fc.string(), (suffix) => {
        const n = flattenSequence(`${of()}-${suffix}`, of());
        return n === null ? !/^[1-9]\d*$/.test(suffix) || suffix === '1' : String(n) === suffix && n >= 2;
      }),
    );
  });
});

describe('killSwitchFlattenDue: the kill switch that flattened is on, no flatten of its own to send again', () => {
  const base = 'qs-0000abcd-SPY-20210318-flatten';
  const SINCE = Date.parse('2021-03-18T14:00:00Z');
  const halt = { since: SINCE, reason: 'daily loss alarm', by: 'alarm:x', flatten: true as const };
  const exit = (over: Partial<IntentRecord>) =>
    intent({ clientOrderId: base, brokerOrderId: 'b-1', ...over });

  it("the day's flatten id when nothing of its series exists (a later day, a market-on-open exit refused)", () => {
    expect(killSwitchFlattenDue([], base, halt)).toEqual({
      id: base,
      sequence: 1,
      ended: null,
      since: SINCE,
      due: true,
    });
    // Another symbol's or the signals' exit is no member of the series.
    const others = [exit({ clientOrderId: 'qs-0000abcd-SPY-20210318-exit', status: 'rejected' })];
    expect(killSwitchFlattenDue(others, base, halt)?.id).toBe(base);
  });

  it('the next number after the highest taken when the day id is spent; its last member named as ended', () => {
    const spent = exit({ status: 'skipped', filledQty: 0 });
    expect(killSwitchFlattenDue([spent], base, halt)).toMatchObject({
      id: `${base}-2`,
      sequence: 2,
      ended: spent,
    });
    const series = [
      exit({ status: 'rejected' }),
      exit({ clientOrderId: `${base}-2`, status: 'cancelled' }),
      exit({ clientOrderId: `${base}-3`, status: 'skipped' }),
    ];
    expect(killSwitchFlattenDue(series, base, halt)).toMatchObject({
      id: `${base}-4`,
      sequence: 4,
      ended: { clientOrderId: `${base}-2` },
    });
    // A member still working: the next number (the caller counts the working one and sends nothing).
    expect(killSwitchFlattenDue([exit({ status: 'accepted' })], base, halt)?.id).toBe(`${base}-2`);
  });

  it('a member the broker does not have (recorded, claimed, unknown: a run that died, or one still sending it) is sent under its own id', () => {
    const recorded = [exit({ status: 'rejected' }), exit({ clientOrderId: `${base}-2`, status: 'recorded' })];
    expect(killSwitchFlattenDue(recorded, base, halt)).toMatchObject({
      id: `${base}-2`,
      sequence: 2,
      ended: { clientOrderId: base },
    });
    expect(killSwitchFlattenDue([exit({ status: 'recorded' })], base, halt)).toMatchObject({
      id: base,
      sequence: 1,
      ended: null,
    });
    // Claimed (its claimant may have died) or unknown (its answer lost, the lookup found nothing):
    // under its own id too, never counted as in flight (nothing else sends it in session); a
    // claimant still going and this send are one order under one id.
    for (const status of ['submitted', 'unknown'] as const) {
      expect(killSwitchFlattenDue([exit({ status })], base, halt)).toMatchObject({
        id: base,
        sequence: 1,
        ended: null,
      });
      expect(
        killSwitchFlattenDue(
          [exit({ status: 'rejected' }), exit({ clientOrderId: `${base}-2`, status })],
          base,
          halt,
        ),
      ).toMatchObject({ id: `${base}-2`, sequence: 2, ended: { clientOrderId: base } });
    }
    // Settled at the broker (accepted, filled, ended): the next number.
    expect(killSwitchFlattenDue([exit({ status: 'filled' })], base, halt)).toMatchObject({
      id: `${base}-2`,
      ended: { status: 'filled' },
    });
  });

  it('nothing without a kill switch that flattened: off (a resume), or a plain halt', () => {
    expect(killSwitchFlattenDue([], base, null)).toBeNull();
    expect(killSwitchFlattenDue([], base, { since: SINCE, reason: 'ops', by: 'ops' })).toBeNull();
  });
});

describe("killSwitchFlattenToSend: the kill switch's flatten a risk check sends now", () => {
  const base = 'qs-0000abcd-SPY-20210318-flatten';
  const SINCE = Date.parse('2021-03-18T14:00:00Z');
  const flattening = { since: SINCE, reason: 'daily loss alarm', by: 'alarm:x', flatten: true as const };
  const refused = intent({
    clientOrderId: base,
    brokerOrderId: 'b-1',
    killSwitchFlatten: SINCE,
    status: 'rejected',
  });

  it('its own flatten that ended unfilled, sent again (as killSwitchFlattenAgain), under any halt of its since', () => {
    const again = killSwitchFlattenAgain([refused], base, SINCE);
    expect(again).not.toBeNull();
    expect(killSwitchFlattenToSend([refused], base, flattening)).toEqual(again);
    const { flatten: _, ...plain } = flattening;
    expect(killSwitchFlattenToSend([refused], base, plain)).toEqual(again);
  });

  it('else, under the kill switch that flattened, what no exit covers (as killSwitchFlattenDue); nothing off or under a plain halt', () => {
    expect(killSwitchFlattenToSend([], base, flattening)).toEqual(killSwitchFlattenDue([], base, flattening));
    expect(killSwitchFlattenToSend([], base, flattening)?.id).toBe(base);
    const { flatten: _, ...plain } = flattening;
    expect(killSwitchFlattenToSend([], base, plain)).toBeNull();
    expect(killSwitchFlattenToSend([refused], base, null)).toBeNull();
  });
});
