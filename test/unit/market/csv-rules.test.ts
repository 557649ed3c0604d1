import { describe, expect, it } from 'vitest';
import { BadBarRowError, NotBarDataError } from '../../../shared/core/errors.js';
import { formatBarTime, parseBarsCsv } from '../../../shared/core/market/index.js';

const src = { file: 'bars.csv', symbol: 'spy' };
const H = 'Date,Open,High,Low,Close,Volume';
const GOOD = ['2021-01-04,10,11,9,10.5,100', '2021-01-05,10.5,12,10,11,200'];

/** A file whose line 4 (header = line 1) is `row`. */
const withRow = (row: string, header = H): string =>
  [header, ...GOOD, row, '2021-01-08,11,12,10,11,1'].join('\n');

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

function badRow(text: string): BadBarRowError {
  const e = errorOf(() => parseBarsCsv(text, src));
  expect(e).toBeInstanceOf(BadBarRowError);
  return e as BadBarRowError;
}

function notBars(text: string): NotBarDataError {
  const e = errorOf(() => parseBarsCsv(text, src));
  expect(e).toBeInstanceOf(NotBarDataError);
  return e as NotBarDataError;
}

describe('parseBarsCsv: bad rows fail the file with file:line', () => {
  const rules: [string, string, string][] = [
    ['empty price', '2021-01-06,,11,9,10,5', 'open is empty'],
    ['non-numeric price', '2021-01-06,10,abc,9,10,5', 'high is not a number: "abc"'],
    ['NaN text', '2021-01-06,10,11,NaN,10,5', 'low is not a number: "NaN"'],
    ['Infinity text', '2021-01-06,10,11,9,Infinity,5', 'close is not a number: "Infinity"'],
    ['hex is not a decimal', '2021-01-06,0x10,11,9,10,5', 'open is not a number: "0x10"'],
    ['non-finite price', '2021-01-06,10,1e999,9,10,5', 'high is not finite: "1e999"'],
    ['negative price', '2021-01-06,10,11,-9,10,5', 'low must be > 0, got -9'],
    ['zero price', '2021-01-06,10,11,9,0,5', 'close must be > 0, got 0'],
    ['negative volume', '2021-01-06,10,11,9,10,-5', 'volume must be >= 0, got -5'],
    ['non-finite volume', '2021-01-06,10,11,9,10,1e400', 'volume is not finite: "1e400"'],
    ['empty volume', '2021-01-06,10,11,9,10,', 'volume is empty'],
    ['high below low', '2021-01-06,10,9,11,10,5', 'high 9 is below low 11'],
    ['open above high', '2021-01-06,11.5,11,9,10,5', 'open 11.5 is outside [low 9, high 11]'],
    ['open below low', '2021-01-06,8.99,11,9,10,5', 'open 8.99 is outside [low 9, high 11]'],
    ['close above high', '2021-01-06,10,11,9,11.000001,5', 'close 11.000001 is outside [low 9, high 11]'],
    ['close below low', '2021-01-06,10,11,9,8,5', 'close 8 is outside [low 9, high 11]'],
    ['duplicate timestamp', '2021-01-05,10,11,9,10,5', 'duplicate timestamp 2021-01-05 (also on line 3)'],
    [
      'out-of-order timestamp',
      '2021-01-01,10,11,9,10,5',
      'timestamp 2021-01-01 is before 2021-01-05 on line 3: rows must be in ascending time order',
    ],
    ['impossible date', '2021-02-30,10,11,9,10,5', 'unparseable date "2021-02-30"'],
    ['slash date (ambiguous)', '01/06/2021,10,11,9,10,5', 'unparseable date "01/06/2021"'],
    ['garbage date', 'yesterday,10,11,9,10,5', 'unparseable date "yesterday"'],
    ['bad time of day', '2021-01-06 25:00:00,10,11,9,10,5', 'unparseable date "2021-01-06 25:00:00"'],
    ['missing columns', '2021-01-06,10,11,9,10', 'missing columns: 5 fields, the header has 6'],
  ];
  for (const [name, row, reason] of rules) {
    it(`${name} -> bars.csv:4: ${reason}`, () => {
      const e = badRow(withRow(row));
      expect(e.file).toBe('bars.csv');
      expect(e.line).toBe(4);
      expect(e.reason).toBe(reason);
      expect(e.message).toBe(`bars.csv:4: ${reason}`);
    });
  }

  it('counts lines the same with CRLF line ends', () => {
    const e = badRow(withRow('2021-01-06,10,9,11,10,5').replaceAll('\n', '\r\n'));
    expect(e.line).toBe(4);
  });

  it('reports the FIRST bad row (fail closed)', () => {
    const text = [H, GOOD[0], '2021-01-05,10,11,9,0,1', '2021-01-06,10,9,11,10,5'].join('\n');
    expect(badRow(text).message).toBe('bars.csv:3: close must be > 0, got 0');
  });

  it('refuses a blank line inside the data, naming the blank line', () => {
    const e = badRow([H, GOOD[0], '', GOOD[1]].join('\n'));
    expect(e.line).toBe(3);
    expect(e.reason).toBe('empty line inside the data (line 4 has more rows)');
  });

  it('validates Adj Close as a price', () => {
    const header = 'Date,Open,High,Low,Close,Adj Close,Volume';
    const e = badRow([header, '2021-01-04,10,11,9,10,0,5'].join('\n'));
    expect(e.message).toBe('bars.csv:2: adj close must be > 0, got 0');
  });

  it('checks the Date+Time pair of split date-time files', () => {
    const header = 'Date,Time,Open,High,Low,Close,Volume';
    const e = badRow([header, '2006-01-02,09:05:00,1,1,1,1,0', '2006-01-02,9h10,1,1,1,1,0'].join('\n'));
    expect(e.message).toBe('bars.csv:3: unparseable date/time "2006-01-02 9h10"');
    const dup = badRow([header, '2006-01-02,09:05:00,1,2,1,1,0', '2006-01-02,09:05,1,2,1,1,0'].join('\n'));
    expect(dup.message).toBe('bars.csv:3: duplicate timestamp 2006-01-02T09:05:00Z (also on line 2)');
  });

  it('accepts prices exactly on the [low, high] bounds (no tolerance needed or given)', () => {
    const s = parseBarsCsv([H, '2021-01-04,11,11,9,9,0', '2021-01-05,7,7,7,7,0'].join('\n'), src);
    expect(Array.from(s.close)).toEqual([9, 7]);
  });
});

describe('parseBarsCsv: refused files', () => {
  it('refuses an empty file and a header without rows', () => {
    expect(notBars('').reason).toBe('the file is empty');
    expect(notBars('\n\r\n').reason).toBe('the file is empty');
    expect(notBars(`${H}\n\n`).reason).toBe('no data rows after the header');
  });

  it('refuses a file without volume or with some OHLC columns missing', () => {
    expect(notBars('Date,Open,High,Low,Close\n2021-01-04,1,1,1,1').reason).toBe('missing column(s): volume');
    expect(notBars('Date,Open,Close,Volume\n2021-01-04,1,1,1').reason).toBe('missing column(s): high, low');
  });

  it('refuses quotes and headerless files: no OHLC columns', () => {
    expect(notBars('time,bid,ask\n2021-01-04,1,2').reason).toBe(
      'no open/high/low/close columns (bid/ask quotes, not bars); header: time,bid,ask',
    );
    expect(notBars('2021-01-04,1,2,0.5,1,10\n2021-01-05,1,2,0.5,1,10').reason).toMatch(
      /^no open\/high\/low\/close columns; header: 2021-01-04/,
    );
  });

  it('refuses undated rows', () => {
    expect(notBars('Open,High,Low,Close,Volume\n1,1,1,1,1').reason).toBe('no date or time column');
    expect(notBars('Index,Open,High,Low,Close,Volume\n0,1,1,1,1,1').reason).toBe(
      'no date or time column (rows are numbered by an "Index" column, not dated)',
    );
  });

  it('refuses duplicate or ambiguous columns', () => {
    expect(notBars('Date,Open,High,Low,Close,close,Volume\n').reason).toBe(
      'the header has two "close" columns',
    );
    expect(notBars('Date,Datetime,Open,High,Low,Close,Volume\n').reason).toBe(
      'ambiguous timestamp: a Datetime column next to a Date or Time column',
    );
  });

  it('refuses a row with more fields than the header, anywhere in the file', () => {
    expect(notBars(withRow('2021-01-06,10,11,9,10,5,7')).reason).toBe(
      'header has 6 columns but line 4 has 7',
    );
  });

  it('refuses ticks: a sub-second timestamp, even .001', () => {
    const text = [
      'Datetime,Open,High,Low,Close,Volume',
      '2015-09-23T20:57:42,1,2,1,2,1',
      '2015-09-23T20:57:43.001,1,2,1,2,1',
    ];
    expect(notBars(text.join('\n')).reason).toBe(
      'line 3 has a sub-second timestamp: tick data, not bars (bars are at least one second long)',
    );
    // A fraction below a millisecond still counts.
    expect(
      notBars(['Datetime,Open,High,Low,Close,Volume', '2015-09-23T20:57:42.0000001,1,1,1,1,1'].join('\n'))
        .reason,
    ).toMatch(/^line 2 has a sub-second timestamp/);
  });

  it('refuses ticks: an intraday file whose every row is open = high = low = close', () => {
    const text = [
      'Datetime,Open,High,Low,Close,Volume',
      '2015-09-23T20:57:42,5,5,5,5,1',
      '2015-09-23T20:57:44,6,6,6,6,1',
    ];
    expect(notBars(text.join('\n')).reason).toBe(
      'every row has open = high = low = close in an intraday file: tick data (trade prints), not bars',
    );
  });

  it('accepts flat rows in daily files, in part of an intraday file, and a zero fraction of a second', () => {
    const daily = parseBarsCsv([H, '2021-01-04,5,5,5,5,0', '2021-01-05,6,6,6,6,0'].join('\n'), src);
    expect(daily.time.length).toBe(2);
    const intraday = parseBarsCsv(
      [
        'Datetime,Open,High,Low,Close,Volume',
        '2021-01-04T10:00:00.000,5,5,5,5,0',
        '2021-01-04T10:01:00,5,6,5,6,0',
      ].join('\n'),
      src,
    );
    expect(intraday.intraday).toBe(true);
    expect(intraday.time[0]).toBe(Date.UTC(2021, 0, 4, 10));
  });
});

describe('parseBarsCsv: layouts', () => {
  it('reads quoted, lower-case, spaced headers in any order, a BOM, CRLF and blank lines around', () => {
    const text =
      '\uFEFF\r\n"volume", "adj_close" ,"LOW","high","Close","open","DATE"\r\n' +
      '100,9.5,9,11,10,10.5,2021-01-04\r\n' +
      '"200", 10 ,10,12,11,10.5,"2021-01-05"\r\n\r\n   \r\n';
    const s = parseBarsCsv(text, src);
    expect(s.symbol).toBe('SPY');
    expect(Array.from(s.time)).toEqual([Date.UTC(2021, 0, 4), Date.UTC(2021, 0, 5)]);
    expect(Array.from(s.open)).toEqual([10.5, 10.5]);
    expect(Array.from(s.high)).toEqual([11, 12]);
    expect(Array.from(s.low)).toEqual([9, 10]);
    expect(Array.from(s.close)).toEqual([10, 11]);
    expect(Array.from(s.volume)).toEqual([100, 200]);
    expect(Array.from(s.adjClose ?? [])).toEqual([9.5, 10]);
    expect(s.intraday).toBe(false);
  });

  it('detects a semicolon-delimited file (decimal commas allowed) and reads it as the comma one', () => {
    const semicolon = parseBarsCsv(
      [
        'Date;Open;High;Low;Close;Volume',
        '2021-01-04;10,5;11;9;10,25;100',
        '2021-01-05;10.5;12;10;11;200',
      ].join('\n'),
      src,
    );
    const comma = parseBarsCsv(
      [H, '2021-01-04,10.5,11,9,10.25,100', '2021-01-05,10.5,12,10,11,200'].join('\n'),
      src,
    );
    expect(semicolon).toEqual(comma);
    const bad = errorOf(() =>
      parseBarsCsv(['Date;Open;High;Low;Close;Volume', '2021-01-04;10;11;9;x;100'].join('\n'), src),
    );
    expect((bad as Error).message).toBe('bars.csv:2: close is not a number: "x"');
  });

  it('reads date-times with T or space, optional seconds, a trailing Z', () => {
    const s = parseBarsCsv(
      [
        'Datetime,Open,High,Low,Close,Volume',
        '2021-01-04T09:30,1,2,1,2,0',
        '2021-01-04 09:31:00,1,2,1,2,0',
        '2021-01-04T09:32:00Z,1,2,1,2,0',
      ].join('\n'),
      src,
    );
    expect(Array.from(s.time, (t) => formatBarTime(t, true))).toEqual([
      '2021-01-04T09:30:00Z',
      '2021-01-04T09:31:00Z',
      '2021-01-04T09:32:00Z',
    ]);
    expect(s.intraday).toBe(true);
  });

  it('reads a lone Time column holding date-times, and midnight-only date-times as daily', () => {
    const s = parseBarsCsv(
      [
        'time,open,high,low,close,volume',
        '2021-01-04 00:00:00,1,2,1,2,0',
        '2021-01-05 00:00:00,1,2,1,2,0',
      ].join('\n'),
      src,
    );
    expect(s.intraday).toBe(false);
    expect(s.time[1]).toBe(Date.UTC(2021, 0, 5));
  });

  it('reads dates before 1970 and leap days', () => {
    const s = parseBarsCsv([H, '1960-02-29,1,2,1,2,0', '2000-02-29,1,2,1,2,0'].join('\n'), src);
    expect(Array.from(s.time)).toEqual([Date.UTC(1960, 1, 29), Date.UTC(2000, 1, 29)]);
    expect(badRow([H, '1900-02-29,1,2,1,2,0'].join('\n')).reason).toBe('unparseable date "1900-02-29"');
  });

  it('reads integers, decimals, exponents and signs', () => {
    const s = parseBarsCsv([H, '2021-01-04,+1.5,2E1,.5,1.,1e3'].join('\n'), src);
    expect([s.open[0], s.high[0], s.low[0], s.close[0], s.volume[0]]).toEqual([1.5, 20, 0.5, 1, 1000]);
  });

  it('returns arrays sized to the bar count', () => {
    const s = parseBarsCsv(`${H}\n${GOOD.join('\n')}\n\n\n`, src);
    expect(s.time.length).toBe(2);
    expect(s.time.buffer.byteLength).toBe(16);
  });
});
