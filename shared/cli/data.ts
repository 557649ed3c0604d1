import { randomUUID } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type AlpacaFeed, AlpacaMarketData } from '../adapters/alpaca/market-data.js';
import { ConfigError, InsufficientDataError, UsageError } from '../core/errors.js';
import { parseBarsCsv } from '../core/market/csv.js';
import { type BarSeries, formatBarTime } from '../core/market/types.js';
import { choiceFlag, dateFlag, type FlagSpecs, parseFlags, renderHelp, stringFlag } from './args.js';

const dataFetchFlags: FlagSpecs = {
  symbols: { type: 'string', value: '<SYM[,SYM...]>', help: 'tickers to fetch, e.g. SPY,QQQ (required)' },
  from: { type: 'string', value: '<YYYY-MM-DD>', help: 'first session date (required)' },
  to: {
    type: 'string',
    value: '<YYYY-MM-DD>',
    help: "last session date, inclusive (default: today's date in New York)",
  },
  out: { type: 'string', value: '<dir>', help: 'folder for the <SYMBOL>.csv files (default data)' },
  feed: {
    type: 'string',
    choices: ['iex', 'sip'],
    help: 'Alpaca data feed (default iex, which free accounts have)',
  },
  'base-url': {
    type: 'string',
    value: '<url>',
    help: "market-data API origin, e.g. a local server's http://127.0.0.1:8080 (default: Alpaca's)",
  },
  help: { type: 'boolean', help: 'show this help' },
};

const dataHelp = renderHelp(
  'quantshift data fetch --symbols <SYM[,SYM...]> --from <YYYY-MM-DD> [flags]',
  'Fetches daily bars (split- and dividend-adjusted) from Alpaca and writes <out>/<SYMBOL>.csv\nas Date,Open,High,Low,Close,Volume. Every file is written or none is.',
  dataFetchFlags,
  [
    'Keys: the environment variables APCA_API_KEY_ID and APCA_API_SECRET_KEY.',
    '',
    'Example:',
    '  quantshift data fetch --symbols SPY,QQQ --from 2018-01-01 --out data',
  ],
);

/** What {@link dataCommand} writes to and reads keys from; `process` fits. */
export interface DataCommandIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Renders bars as `Date,Open,High,Low,Close,Volume` (numbers in shortest round-trip form). */
function renderBarsCsv(series: BarSeries): string {
  const lines = ['Date,Open,High,Low,Close,Volume'];
  for (let i = 0; i < series.time.length; i++) {
    lines.push(
      [
        formatBarTime(series.time[i] as number, false),
        series.open[i],
        series.high[i],
        series.low[i],
        series.close[i],
        series.volume[i],
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

const newYorkToday = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'America/New_York',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

function parseSymbols(text: string | undefined): string[] {
  if (text === undefined)
    throw new UsageError('data fetch: --symbols is required (see quantshift data --help)');
  const symbols = text
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  if (symbols.length === 0) throw new UsageError(`--symbols ${text}: expected tickers such as SPY,QQQ`);
  for (const symbol of symbols) {
    if (!/^[A-Z0-9][A-Z0-9.]*$/.test(symbol)) {
      throw new UsageError(`--symbols: "${symbol}" is not a ticker (letters, digits and dots)`);
    }
  }
  return [...new Set(symbols)];
}

function readKeys(env: Readonly<Record<string, string | undefined>>): { keyId: string; secret: string } {
  const keyId = env.APCA_API_KEY_ID?.trim();
  const secret = env.APCA_API_SECRET_KEY?.trim();
  const missing = [keyId ? '' : 'APCA_API_KEY_ID', secret ? '' : 'APCA_API_SECRET_KEY'].filter(Boolean);
  if (!keyId || !secret) {
    throw new ConfigError(
      `data fetch: set ${missing.join(' and ')} in the environment (your Alpaca API key id and secret)`,
    );
  }
  return { keyId, secret };
}

/** `quantshift data fetch`: returns the process exit code. */
export async function dataCommand(argv: readonly string[], io: DataCommandIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(dataHelp);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'fetch') throw new UsageError(`data: unknown subcommand "${sub}" (expected: fetch)`);
  const flags = parseFlags('data fetch', rest, dataFetchFlags);
  if (flags.help) {
    io.stdout.write(dataHelp);
    return 0;
  }

  const symbols = parseSymbols(stringFlag(flags, 'symbols'));
  const fromTime = dateFlag(flags, 'from');
  if (fromTime === undefined)
    throw new UsageError('data fetch: --from is required (see quantshift data --help)');
  const from = formatBarTime(fromTime, false);
  const to = formatBarTime(dateFlag(flags, 'to') ?? Date.parse(newYorkToday.format(Date.now())), false);
  if (from > to) throw new UsageError(`--from ${from} is after --to ${to}`);
  const out = stringFlag(flags, 'out') ?? 'data';
  const feed: AlpacaFeed = choiceFlag(flags, 'feed', ['iex', 'sip'] as const) ?? 'iex';
  const baseUrl = stringFlag(flags, 'base-url');
  if (baseUrl !== undefined && !/^https?:\/\/[^/]+\/?$/.test(baseUrl)) {
    throw new UsageError(`--base-url ${baseUrl}: expected an origin such as http://127.0.0.1:8080`);
  }
  const keys = readKeys(io.env ?? process.env);

  const marketData = new AlpacaMarketData({
    ...keys,
    feed,
    ...(baseUrl === undefined ? {} : { baseUrl }),
    onRetry: (e) =>
      io.stderr.write(
        `data: ${e.status === undefined ? 'network failure' : `HTTP ${e.status}`}, retry ${e.attempt}/${e.maxRetries} in ${e.delayMs} ms\n`,
      ),
  });
  io.stderr.write(`data: fetching ${symbols.join(', ')} ${from}..${to} (feed ${feed})\n`);
  const series = await marketData.getDailyBars({ symbols, from, to, adjustment: 'all' });

  // Render and check everything before touching the disk: a failure leaves no file behind.
  const files = series.map((s) => {
    if (s.time.length === 0) {
      throw new InsufficientDataError(
        `data fetch: no bars for ${s.symbol} between ${from} and ${to} (feed ${feed})`,
      );
    }
    const path = join(out, `${s.symbol}.csv`);
    const text = renderBarsCsv(s);
    parseBarsCsv(text, { file: path, symbol: s.symbol });
    return { series: s, path, text };
  });

  mkdirSync(out, { recursive: true });
  const temps: string[] = [];
  try {
    for (const file of files) {
      const temp = join(out, `.${file.series.symbol}.csv.${process.pid}.${randomUUID().slice(0, 8)}.tmp`);
      temps.push(temp);
      writeFileSync(temp, file.text);
    }
    files.forEach((file, i) => {
      renameSync(temps[i] as string, file.path);
    });
  } finally {
    for (const temp of temps) rmSync(temp, { force: true });
  }
  for (const { series: s, path } of files) {
    const first = formatBarTime(s.time[0] as number, false);
    const last = formatBarTime(s.time[s.time.length - 1] as number, false);
    io.stderr.write(`data: ${s.symbol}: ${s.time.length} bars ${first}..${last} -> ${resolve(path)}\n`);
  }
  return 0;
}
