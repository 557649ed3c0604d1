import { afterEach, describe, expect, it } from 'vitest';
import { endOfDay } from '../../shared/live/end-of-day.js';
import { marketOpenCheck } from '../../shared/live/market-open-check.js';
import { mondayOf, summarizeWeek } from '../../shared/live/weekly-report.js';
import { startLiveStack } from '../helpers/live-stack.js';

// New York is on daylight saving time in these weeks: 09:00 = 13:00Z.
const at = (day: string, hhmm: string) =>
  `${day}T${String(Number(hhmm.slice(0, 2)) + 4).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;

let stack: Awaited<ReturnType<typeof startLiveStack>> | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function runDay(day: string) {
  if (stack === undefined) throw new Error('no stack');
  stack.alpaca.setTime(at(day, '09:00'));
  await marketOpenCheck(stack.ctx, at(day, '09:00'));
  stack.alpaca.setTime(at(day, '16:15'));
  return endOfDay(stack.ctx, at(day, '16:15'));
}

const weekly = () => stack?.notifier.sent.filter((n) => n.subject.startsWith('Weekly report')) ?? [];

describe('the weekly report', () => {
  it('knows the ISO week', () => {
    expect(mondayOf('2021-03-19')).toBe('2021-03-15');
    expect(mondayOf('2021-03-15')).toBe('2021-03-15');
    expect(mondayOf('2021-03-21')).toBe('2021-03-15');
    expect(summarizeWeek('2021-03-19', [], [])).toBeNull();
  });

  it('goes out after the last session of the week only: a Friday, or the Thursday before Good Friday', async () => {
    stack = await startLiveStack({ startTime: at('2021-03-17', '08:00') });
    await runDay('2021-03-17'); // Wednesday
    await runDay('2021-03-18'); // Thursday
    expect(weekly()).toEqual([]);
    const friday = await runDay('2021-03-19');
    expect(weekly()).toHaveLength(1);
    expect(weekly()[0]).toMatchObject({
      subject: expect.stringContaining('week of 2021-03-15'),
      kind: 'report',
    });
    if (!('date' in friday)) throw new Error('expected a report');
    expect(friday.weekly).toMatchObject({ weekOf: '2021-03-15', sessions: 3, lastSession: '2021-03-19' });

    await runDay('2021-03-31'); // Wednesday
    expect(weekly()).toHaveLength(1);
    await runDay('2021-04-01'); // Thursday; Good Friday 2021-04-02 is a holiday
    expect(weekly()).toHaveLength(2);
    expect(weekly()[1]?.subject).toContain('week of 2021-03-29');
  });
});
