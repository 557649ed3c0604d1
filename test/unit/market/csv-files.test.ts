import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadBarsCsv } from '../../../shared/adapters/fs/bars.js';
import { NotBarDataError } from '../../../shared/core/errors.js';
import { type BarSeries, formatBarTime } from '../../../shared/core/market/index.js';

const fixtures = fileURLToPath(new URL('../../fixtures/data/', import.meta.url));
const dataDir = fileURLToPath(new URL('../../../data/', import.meta.url));

/** [time, open, high, low, close, volume] as written in the file. */
type Row = [string, number, number, number, number, number];

function expectBar(s: BarSeries, i: number, [time, open, high, low, close, volume]: Row): void {
  const at = i < 0 ? s.time.length + i : i;
  expect({
    time: formatBarTime(s.time[at] as number, s.intraday),
    open: s.open[at],
    high: s.high[at],
    low: s.low[at],
    close: s.close[at],
    volume: s.volume[at],
  }).toEqual({ time, open, high, low, close, volume });
}

interface Case {
  file: string;
  dir?: string;
  layout: string;
  count: number;
  intraday: boolean;
  first: Row;
  last: Row;
  adjClose?: boolean;
}

const cases: Case[] = [
  {
    file: 'SPY.csv',
    dir: dataDir,
    layout: 'Date,Close,High,Low,Open,Volume (unusual column order)',
    count: 1255,
    intraday: false,
    first: [
      '2021-01-11',
      352.7140522127588,
      355.2624244716988,
      352.5926957266306,
      353.4981689453125,
      51034700,
    ],
    last: ['2026-01-08', 688.8200073242188, 690.6199951171875, 687.489990234375, 689.510009765625, 63895800],
  },
  {
    file: 'QQQ.csv',
    dir: dataDir,
    layout: 'Date,Close,High,Low,Open,Volume',
    count: 1255,
    intraday: false,
    first: [
      '2021-01-11',
      306.63590537861705,
      307.81011517806013,
      304.4718398870611,
      305.1220397949219,
      32746400,
    ],
    last: ['2026-01-08', 623.030029296875, 623.4199829101562, 617.7999877929688, 620.469970703125, 50308000],
  },
  {
    file: 'AAPL.csv',
    dir: dataDir,
    layout: 'Date,Close,High,Low,Open,Volume',
    count: 1255,
    intraday: false,
    first: [
      '2021-01-11',
      125.76031685281629,
      126.71429603758807,
      125.08863232599059,
      125.5558853149414,
      100384500,
    ],
    last: [
      '2026-01-08',
      257.0199890136719,
      259.2900085449219,
      255.6999969482422,
      259.0400085449219,
      50364100,
    ],
  },
  {
    file: 'MSFT.csv',
    dir: dataDir,
    layout: 'Date,Close,High,Low,Open,Volume',
    count: 1255,
    intraday: false,
    first: [
      '2021-01-11',
      209.63066780968265,
      210.0528676774654,
      207.961063234746,
      208.69032287597656,
      23031300,
    ],
    last: ['2026-01-08', 481.239990234375, 482.6600036621094, 475.8599853515625, 478.1099853515625, 18147300],
  },
  {
    file: 'GOOG.csv',
    layout: 'unnamed first date column (header starts with ",")',
    count: 2148,
    intraday: false,
    first: ['2004-08-19', 100, 104.06, 95.96, 100.34, 22351900],
    last: ['2013-03-01', 797.8, 807.14, 796.15, 806.19, 2175400],
  },
  {
    file: 'EURUSD.csv',
    layout: 'unnamed first column with "YYYY-MM-DD HH:MM:SS" hourly date-times',
    count: 5000,
    intraday: true,
    first: ['2017-04-19T09:00:00Z', 1.0716, 1.0722, 1.07083, 1.07219, 1413],
    last: ['2018-02-07T15:00:00Z', 1.23427, 1.23444, 1.22904, 1.22904, 6143],
  },
  {
    file: 'BTCUSD.csv',
    layout: 'unnamed date column, monthly bars, decimal volume',
    count: 156,
    intraday: false,
    first: ['2012-01-31', 4.58, 7.38, 3.8, 5.55, 2012.25343589],
    last: ['2024-12-31', 96515, 108364, 92092, 93381, 25342.80228337],
  },
  {
    file: '2006-day-001.txt',
    layout: 'Date,Open,High,Low,Close,Volume,OpenInterest',
    count: 255,
    intraday: false,
    first: ['2006-01-02', 3578.73, 3605.95, 3578.73, 3604.33, 0],
    last: ['2006-12-29', 4130.12, 4142.01, 4119.94, 4119.94, 0],
  },
  {
    file: '2006-day-001-optix.txt',
    layout: 'extra unknown columns after OpenInterest',
    count: 255,
    intraday: false,
    first: ['2006-01-02', 3578.73, 3605.95, 3578.73, 3604.33, 0],
    last: ['2006-12-29', 4130.12, 4142.01, 4119.94, 4119.94, 0],
  },
  {
    file: '2006-volume-day-001.txt',
    layout: 'CRLF line ends, real volume and open interest',
    count: 255,
    intraday: false,
    first: ['2006-01-02', 3602, 3624, 3596, 3617, 164794],
    last: ['2006-12-29', 4157, 4167, 4145, 4157, 205816],
  },
  {
    file: '2006-week-001.txt',
    layout: 'weekly bars',
    count: 52,
    intraday: false,
    first: ['2006-01-06', 3578.73, 3666.99, 3578.73, 3666.99, 0],
    last: ['2006-12-29', 4079.7, 4142.06, 4079.7, 4119.94, 0],
  },
  {
    file: '2006-month-001.txt',
    layout: 'monthly bars',
    count: 12,
    intraday: false,
    first: ['2006-01-31', 3578.73, 3707.63, 3515.07, 3691.41, 0],
    last: ['2006-12-29', 3993.03, 4147.38, 3914.46, 4119.94, 0],
  },
  {
    file: '2006-min-005.txt',
    layout: 'separate Date and Time columns (5-minute bars)',
    count: 2142,
    intraday: true,
    first: ['2006-01-02T09:05:00Z', 3578.73, 3587.88, 3578.73, 3582.99, 0],
    last: ['2006-01-30T17:30:00Z', 3679.29, 3679.4, 3676.31, 3677.52, 0],
  },
  {
    file: 'nvda-2014.txt',
    layout: 'Yahoo: Date,Open,High,Low,Close,Adj Close,Volume',
    count: 252,
    intraday: false,
    first: ['2014-01-02', 15.92, 15.98, 15.72, 15.86, 6502300],
    last: ['2014-12-31', 20.4, 20.51, 19.99, 20.049999, 4157500],
    adjClose: true,
  },
];

describe('parseBarsCsv on the reference files', () => {
  for (const c of cases) {
    it(`${c.file}: ${c.layout}`, () => {
      const s = loadBarsCsv(`${c.dir ?? fixtures}${c.file}`);
      expect(s.time.length).toBe(c.count);
      for (const a of [s.open, s.high, s.low, s.close, s.volume]) expect(a.length).toBe(c.count);
      expect(s.intraday).toBe(c.intraday);
      expectBar(s, 0, c.first);
      expectBar(s, -1, c.last);
      expect(s.adjClose !== undefined).toBe(c.adjClose === true);
    });
  }

  it('names the series after the file, upper-cased, unless a symbol is given', () => {
    expect(loadBarsCsv(`${fixtures}GOOG.csv`).symbol).toBe('GOOG');
    expect(loadBarsCsv(`${fixtures}nvda-2014.txt`).symbol).toBe('NVDA-2014');
    expect(loadBarsCsv(`${fixtures}nvda-2014.txt`, { symbol: 'nvda' }).symbol).toBe('NVDA');
  });

  it('keeps Adj Close and, with adjusted: true, scales OHLC by adjClose / close', () => {
    const raw = loadBarsCsv(`${fixtures}nvda-2014.txt`);
    const adj = loadBarsCsv(`${fixtures}nvda-2014.txt`, { adjusted: true });
    expect(raw.adjClose?.[0]).toBe(15.096152);
    expect(adj.adjClose?.[0]).toBe(15.096152);
    const f = 15.096152 / 15.86;
    expect(adj.open[0]).toBeCloseTo(15.92 * f, 12);
    expect(adj.high[0]).toBeCloseTo(15.98 * f, 12);
    expect(adj.low[0]).toBeCloseTo(15.72 * f, 12);
    expect(adj.close[0]).toBeCloseTo(15.096152, 12);
    expect(adj.volume).toEqual(raw.volume);
    for (let i = 0; i < adj.time.length; i++) {
      const [o, h, l, c] = [adj.open[i], adj.high[i], adj.low[i], adj.close[i]] as [
        number,
        number,
        number,
        number,
      ];
      expect(l <= o && o <= h && l <= c && c <= h).toBe(true);
    }
  });

  it('ignores adjusted: true when the file has no Adj Close (already adjusted data)', () => {
    const spy = loadBarsCsv(`${dataDir}SPY.csv`, { adjusted: true });
    expect(spy.close[0]).toBe(353.4981689453125);
    expect(spy.adjClose).toBeUndefined();
  });
});

describe('parseBarsCsv refuses files that are not OHLCV bars', () => {
  const refused: [string, string][] = [
    ['bidask.csv', 'no open/high/low/close columns (bid/ask quotes, not bars); header: TIMESTAMP,BID,ASK'],
    [
      'bidask2.csv',
      'no open/high/low/close columns (bid/ask quotes, not bars); header: TimeStamp,cross,status ("D"= dealt) (only trades "DEALT"),bid, offer, vol bid, vol offer',
    ],
    [
      'ticksample.csv',
      'line 2 has a sub-second timestamp: tick data, not bars (bars are at least one second long)',
    ],
    [
      'TA-Lib_test_data_252.csv',
      'no date or time column (rows are numbered by an "Index" column, not dated)',
    ],
    ['2006-01-02-volume-min-001.txt', 'header has 7 columns but line 2 has 8'],
  ];
  for (const [file, reason] of refused) {
    it(`${file}: ${reason}`, () => {
      const path = `${fixtures}${file}`;
      let caught: unknown;
      try {
        loadBarsCsv(path);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(NotBarDataError);
      const e = caught as NotBarDataError;
      expect(e.file).toBe(path);
      expect(e.reason).toBe(reason);
      expect(e.message).toBe(`${path}: not OHLCV bar data: ${reason}`);
    });
  }
});
