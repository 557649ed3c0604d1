/**
 * Parses OHLCV bar files (CSV text) into a column-wise {@link BarSeries}. Pure: no file system.
 *
 * Layouts read (all seen in the reference data):
 * - columns in any order, headers matched case-insensitively, ignoring spaces, `_` and `-`
 *   (`Adj Close` = `adj_close` = `AdjClose`); surrounding double quotes are stripped;
 * - the timestamp in a `Date`, `Datetime` (or `Timestamp`) column, in an unnamed first column
 *   (header starting with `,`), in a lone `Time` column, or split over `Date` + `Time`;
 * - timestamps `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fff]]` or `YYYY-MM-DDTHH:MM[:SS[.fff]]`
 *   (an optional trailing `Z`); the wall clock is read as UTC. Slash dates (`02/03/2010`) are
 *   refused as unparseable because their day/month order is ambiguous;
 * - extra columns (`Adj Close`, `OpenInterest`, anything unknown) are allowed; only `Adj Close`
 *   is kept;
 * - `Vol` (the crypto files' 24 h volume in USD) is read as the volume column;
 * - LF or CRLF line ends, a UTF-8 byte-order mark, leading and trailing blank lines.
 *
 * Fields are split on every `,` (bar files carry no quoted commas); a field may be wrapped in
 * blanks or double quotes. A file whose header has semicolons and no comma (a European
 * spreadsheet's export) is split on `;` instead, and its numbers may use a decimal comma (`1,5`).
 *
 * Required columns: open, high, low, close, volume and a timestamp. Volume is required (every
 * reference file has one, sometimes all zeros, which is accepted).
 *
 * Whole-file refusals ({@link NotBarDataError}): no OHLC columns (quotes such as bid/ask), a
 * missing volume or timestamp column (for example TA-Lib's undated `Index` file), a row with MORE
 * fields than the header (the header does not describe the rows: "header has N columns but line L
 * has M"), no data rows, and ticks. The tick rule: a timestamp with a non-zero fraction of a second
 * (bars are at least one second long), or an intraday file of two or more rows in which every
 * row has open = high = low = close (trade prints). Flat rows alone are never refused in daily
 * files (illiquid stocks and fund NAVs have them) nor when only some rows are flat.
 *
 * Row rules ({@link BadBarRowError}, `file:line`, header = line 1; the first bad row fails the
 * file): fewer fields than the header, an unparseable timestamp, a price (open, high, low, close,
 * adj close) that is empty, not a decimal number, not finite or not > 0, a volume that is empty,
 * not a number, not finite or negative, high < low, open or close outside [low, high], a
 * timestamp equal to (duplicate) or before the previous row's, a blank line followed by more data.
 * The [low, high] check is exact: every reference file passes it without tolerance (checked over
 * all of them, including the adjusted SPY/QQQ/AAPL/MSFT with 15+ significant digits), so none is
 * allowed.
 */
import { BadBarRowError, NotBarDataError } from '../errors.js';
import { type BarSeries, formatBarTime, type MutableBarSeries } from './types.js';

/** Where the text came from: `file` names it in errors, `symbol` becomes the series' symbol. */
export interface BarsCsvSource {
  readonly file: string;
  readonly symbol: string;
}

export interface ParseBarsOptions {
  /**
   * Scale open/high/low/close by `adjClose / close` when the file has an `Adj Close` column
   * (the raw column is still returned as `adjClose`). Without that column the prices are
   * returned as they are.
   */
  readonly adjusted?: boolean;
}

const MS_PER_DAY = 86_400_000;

/** Column positions found in the header; -1 when absent. */
interface Columns {
  stamp: number;
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  adjClose: number;
  volume: number;
}

/** Parses one bar file. Throws {@link NotBarDataError} or {@link BadBarRowError}; never returns partial data. */
export function parseBarsCsv(text: string, source: BarsCsvSource, options: ParseBarsOptions = {}): BarSeries {
  const file = source.file;
  const len = text.length;
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let lineNo = 0;

  // Header: the first non-blank line.
  let header: string[] | undefined;
  let headerLine = '';
  while (pos < len && header === undefined) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = len;
    const line = stripCr(text, pos, end);
    pos = end + 1;
    lineNo++;
    if (!isBlank(line)) {
      headerLine = line;
      header = line.split(delimiterOf(line)).map(headerKey);
    }
  }
  if (header === undefined) throw new NotBarDataError(file, 'the file is empty');
  const cols = findColumns(file, header, headerLine);
  const width = header.length;
  const delimiter = delimiterOf(headerLine);

  // Capacity: one slot per remaining line (blank lines leave slots unused).
  let capacity = 1;
  for (let i = text.indexOf('\n', pos); i >= 0; i = text.indexOf('\n', i + 1)) capacity++;
  const time = new Float64Array(capacity);
  const open = new Float64Array(capacity);
  const high = new Float64Array(capacity);
  const low = new Float64Array(capacity);
  const close = new Float64Array(capacity);
  const volume = new Float64Array(capacity);
  const adjClose = cols.adjClose >= 0 ? new Float64Array(capacity) : undefined;

  let n = 0;
  let blankLine = 0; // first blank line after the header, while no data follows it
  let prevTime = Number.NEGATIVE_INFINITY;
  let prevLine = 0;
  let anyTimeOfDay = false;
  let allFlat = true;

  while (pos < len) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = len;
    const line = stripCr(text, pos, end);
    pos = end + 1;
    lineNo++;
    if (isBlank(line)) {
      if (blankLine === 0) blankLine = lineNo;
      continue;
    }
    if (blankLine !== 0) {
      throw new BadBarRowError(file, blankLine, `empty line inside the data (line ${lineNo} has more rows)`);
    }
    const fields = delimiter === ',' ? line.split(',') : line.split(';').map(decimalComma);
    if (fields.length > width) {
      throw new NotBarDataError(file, `header has ${width} columns but line ${lineNo} has ${fields.length}`);
    }
    if (fields.length < width) {
      throw new BadBarRowError(
        file,
        lineNo,
        `missing columns: ${fields.length} fields, the header has ${width}`,
      );
    }

    // Timestamp.
    let t: number;
    if (cols.time >= 0) {
      const d = cell(fields[cols.stamp] as string);
      const tod = cell(fields[cols.time] as string);
      const day = parseStamp(d, false);
      const ms = parseTimeOfDay(tod, 0, tod.length);
      if (Number.isNaN(day) || Number.isNaN(ms)) {
        throw new BadBarRowError(file, lineNo, `unparseable date/time "${d} ${tod}"`);
      }
      t = day + ms;
    } else {
      const s = cell(fields[cols.stamp] as string);
      t = parseStamp(s, true);
      if (Number.isNaN(t)) throw new BadBarRowError(file, lineNo, `unparseable date "${s}"`);
    }
    if (t % 1000 !== 0) {
      throw new NotBarDataError(
        file,
        `line ${lineNo} has a sub-second timestamp: tick data, not bars (bars are at least one second long)`,
      );
    }
    if (t % MS_PER_DAY !== 0) anyTimeOfDay = true;

    // Values.
    const o = price(file, lineNo, 'open', fields[cols.open] as string);
    const h = price(file, lineNo, 'high', fields[cols.high] as string);
    const l = price(file, lineNo, 'low', fields[cols.low] as string);
    const c = price(file, lineNo, 'close', fields[cols.close] as string);
    const v = parseVolume(file, lineNo, fields[cols.volume] as string);
    if (h < l) throw new BadBarRowError(file, lineNo, `high ${h} is below low ${l}`);
    if (o < l || o > h) throw new BadBarRowError(file, lineNo, `open ${o} is outside [low ${l}, high ${h}]`);
    if (c < l || c > h) throw new BadBarRowError(file, lineNo, `close ${c} is outside [low ${l}, high ${h}]`);
    if (t <= prevTime) {
      const showTime = t % MS_PER_DAY !== 0 || prevTime % MS_PER_DAY !== 0;
      const at = formatBarTime(t, showTime);
      throw new BadBarRowError(
        file,
        lineNo,
        t === prevTime
          ? `duplicate timestamp ${at} (also on line ${prevLine})`
          : `timestamp ${at} is before ${formatBarTime(prevTime, showTime)} on line ${prevLine}: rows must be in ascending time order`,
      );
    }
    if (adjClose !== undefined)
      adjClose[n] = price(file, lineNo, 'adj close', fields[cols.adjClose] as string);
    if (allFlat && !(o === h && h === l && l === c)) allFlat = false;

    time[n] = t;
    open[n] = o;
    high[n] = h;
    low[n] = l;
    close[n] = c;
    volume[n] = v;
    prevTime = t;
    prevLine = lineNo;
    n++;
  }

  if (n === 0) throw new NotBarDataError(file, 'no data rows after the header');
  if (anyTimeOfDay && allFlat && n >= 2) {
    throw new NotBarDataError(
      file,
      'every row has open = high = low = close in an intraday file: tick data (trade prints), not bars',
    );
  }

  if (options.adjusted === true && adjClose !== undefined) {
    for (let i = 0; i < n; i++) {
      // Multiplying every price of the row by the same positive factor keeps low <= open, close <= high.
      const f = (adjClose[i] as number) / (close[i] as number);
      open[i] = (open[i] as number) * f;
      high[i] = (high[i] as number) * f;
      low[i] = (low[i] as number) * f;
      close[i] = (close[i] as number) * f;
    }
  }

  const shrink = (a: Float64Array): Float64Array => (n === capacity ? a : a.slice(0, n));
  const series: MutableBarSeries = {
    symbol: source.symbol.toUpperCase(),
    time: shrink(time),
    open: shrink(open),
    high: shrink(high),
    low: shrink(low),
    close: shrink(close),
    volume: shrink(volume),
    intraday: anyTimeOfDay,
  };
  if (adjClose !== undefined) series.adjClose = shrink(adjClose);
  return series;
}

// ---------------------------------------------------------------------------------------------
// Header

/** `;` for a header with semicolons and no comma (then numbers may have a decimal comma), else `,`. */
function delimiterOf(headerLine: string): ',' | ';' {
  return headerLine.includes(';') && !headerLine.includes(',') ? ';' : ',';
}

/** A field of a semicolon-delimited file with its decimal comma read as a point (`1,5` is 1.5). */
function decimalComma(field: string): string {
  return field.includes(',') ? field.replace(',', '.') : field;
}

/** Normalises a header name: unquoted, lower case, without spaces, `_` and `-`. */
function headerKey(raw: string): string {
  let out = '';
  const s = cell(raw).toLowerCase();
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    if (ch !== ' ' && ch !== '_' && ch !== '-' && ch !== '\t') out += ch;
  }
  return out;
}

const KNOWN: Readonly<Record<string, keyof Columns | 'datetime' | 'date' | 'ignored'>> = {
  date: 'date',
  datetime: 'datetime',
  timestamp: 'datetime',
  time: 'time',
  open: 'open',
  high: 'high',
  low: 'low',
  close: 'close',
  adjclose: 'adjClose',
  volume: 'volume',
  /** The crypto files' 24 h volume in quote currency (USD), not in coins: read as the bar's volume. */
  vol: 'volume',
  openinterest: 'ignored',
};

function findColumns(file: string, header: readonly string[], headerLine: string): Columns {
  const at: Record<string, number> = {};
  header.forEach((key, i) => {
    const role = Object.hasOwn(KNOWN, key) ? KNOWN[key] : undefined;
    if (role === undefined || role === 'ignored') return;
    if (at[role] !== undefined) throw new NotBarDataError(file, `the header has two "${key}" columns`);
    at[role] = i;
  });
  const idx = (role: string): number => at[role] ?? -1;

  const ohlc = ['open', 'high', 'low', 'close'] as const;
  const missing = [...ohlc, 'volume'].filter((k) => idx(k) < 0);
  if (ohlc.every((k) => idx(k) < 0)) {
    const quotes = header.some((k) => k === 'bid' || k === 'ask' || k === 'offer');
    throw new NotBarDataError(
      file,
      `no open/high/low/close columns${quotes ? ' (bid/ask quotes, not bars)' : ''}; header: ${headerLine}`,
    );
  }
  if (missing.length > 0) throw new NotBarDataError(file, `missing column(s): ${missing.join(', ')}`);

  let stamp = -1;
  let time = -1;
  if (idx('datetime') >= 0) {
    if (idx('date') >= 0 || idx('time') >= 0) {
      throw new NotBarDataError(file, 'ambiguous timestamp: a Datetime column next to a Date or Time column');
    }
    stamp = idx('datetime');
  } else if (idx('date') >= 0) {
    stamp = idx('date');
    time = idx('time');
  } else if (idx('time') >= 0) {
    stamp = idx('time');
  } else if (header[0] === '') {
    stamp = 0;
  } else {
    const numbered = header.includes('index');
    throw new NotBarDataError(
      file,
      `no date or time column${numbered ? ' (rows are numbered by an "Index" column, not dated)' : ''}`,
    );
  }
  return {
    stamp,
    time,
    open: idx('open'),
    high: idx('high'),
    low: idx('low'),
    close: idx('close'),
    adjClose: idx('adjClose'),
    volume: idx('volume'),
  };
}

// ---------------------------------------------------------------------------------------------
// Fields

function stripCr(text: string, start: number, end: number): string {
  return end > start && text.charCodeAt(end - 1) === 13 ? text.slice(start, end - 1) : text.slice(start, end);
}

function isBlank(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c !== 32 && c !== 9) return false;
  }
  return true;
}

/** A field without surrounding blanks and double quotes (fast path: returned as is). */
function cell(s: string): string {
  const n = s.length;
  if (n === 0) return s;
  const first = s.charCodeAt(0);
  const last = s.charCodeAt(n - 1);
  if (first !== 32 && first !== 9 && first !== 34 && last !== 32 && last !== 9 && last !== 34) return s;
  let t = s.trim();
  if (t.length >= 2 && t.charCodeAt(0) === 34 && t.charCodeAt(t.length - 1) === 34) t = t.slice(1, -1).trim();
  return t;
}

/**
 * A plain decimal number: optional sign, digits with at most one `.`, optional exponent. Returns
 * NaN for anything else (`''`, `0x10`, `Infinity`, `1,5`), which `Number()` alone would accept or
 * misread. The value itself comes from `Number()`, so it is the correctly rounded double.
 */
function parseDecimal(s: string): number {
  const n = s.length;
  let i = 0;
  let c = s.charCodeAt(0);
  if (c === 43 || c === 45) i++; // + -
  let digits = 0;
  let dot = false;
  for (; i < n; i++) {
    c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c === 46 && !dot) dot = true;
    else break;
  }
  if (digits === 0) return Number.NaN;
  if (i < n) {
    if (c !== 101 && c !== 69) return Number.NaN; // e E
    i++;
    c = s.charCodeAt(i);
    if (c === 43 || c === 45) i++;
    const expStart = i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    if (i === expStart || i < n) return Number.NaN;
  }
  return Number(s);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function price(file: string, line: number, name: string, raw: string): number {
  const s = cell(raw);
  const x = parseDecimal(s);
  if (x > 0 && x !== Number.POSITIVE_INFINITY) return x;
  if (s === '') throw new BadBarRowError(file, line, `${name} is empty`);
  if (Number.isNaN(x)) throw new BadBarRowError(file, line, `${name} is not a number: "${s}"`);
  if (!Number.isFinite(x)) throw new BadBarRowError(file, line, `${name} is not finite: "${s}"`);
  throw new BadBarRowError(file, line, `${name} must be > 0, got ${s}`);
}

function parseVolume(file: string, line: number, raw: string): number {
  const s = cell(raw);
  const x = parseDecimal(s);
  if (x >= 0 && x !== Number.POSITIVE_INFINITY) return x;
  if (s === '') throw new BadBarRowError(file, line, 'volume is empty');
  if (Number.isNaN(x)) throw new BadBarRowError(file, line, `volume is not a number: "${s}"`);
  if (!Number.isFinite(x)) throw new BadBarRowError(file, line, `volume is not finite: "${s}"`);
  throw new BadBarRowError(file, line, `volume must be >= 0, got ${s}`);
}

// ---------------------------------------------------------------------------------------------
// Timestamps

/** Reads `n` ASCII digits at `i`; -1 when any is not a digit. */
function digitsAt(s: string, i: number, n: number): number {
  let v = 0;
  for (let k = i; k < i + n; k++) {
    const c = s.charCodeAt(k) - 48;
    if (c < 0 || c > 9 || Number.isNaN(c)) return -1;
    v = v * 10 + c;
  }
  return v;
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil; any year). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/**
 * `YYYY-MM-DD`, or (when `allowTime`) `YYYY-MM-DD[T ]HH:MM[:SS[.f+]][Z]`, to epoch milliseconds
 * with the wall clock read as UTC; NaN when not a valid calendar date/time.
 */
function parseStamp(s: string, allowTime: boolean): number {
  if (s.length < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return Number.NaN;
  const y = digitsAt(s, 0, 4);
  const m = digitsAt(s, 5, 2);
  const d = digitsAt(s, 8, 2);
  if (y < 0 || m < 1 || m > 12 || d < 1) return Number.NaN;
  if (d > (m === 2 && isLeap(y) ? 29 : (DAYS_IN_MONTH[m - 1] as number))) return Number.NaN;
  const day = daysFromCivil(y, m, d) * MS_PER_DAY;
  if (s.length === 10) return day;
  const sep = s.charCodeAt(10);
  if (!allowTime || (sep !== 84 && sep !== 32)) return Number.NaN; // 'T' ' '
  return day + parseTimeOfDay(s, 11, s.length);
}

/** `HH:MM[:SS[.f+]][Z]` in `s[start, end)` to milliseconds (possibly fractional); NaN when invalid. */
function parseTimeOfDay(s: string, start: number, end: number): number {
  if (end > start && s.charCodeAt(end - 1) === 90) end--; // trailing 'Z': already UTC
  const n = end - start;
  if (n !== 5 && n < 8) return Number.NaN;
  const hh = digitsAt(s, start, 2);
  const mm = digitsAt(s, start + 3, 2);
  if (s.charCodeAt(start + 2) !== 58 || hh < 0 || hh > 23 || mm < 0 || mm > 59) return Number.NaN;
  let ms = (hh * 60 + mm) * 60_000;
  if (n === 5) return ms;
  const ss = digitsAt(s, start + 6, 2);
  if (s.charCodeAt(start + 5) !== 58 || ss < 0 || ss > 59) return Number.NaN;
  ms += ss * 1000;
  if (n === 8) return ms;
  if (s.charCodeAt(start + 8) !== 46 || n === 9) return Number.NaN; // '.'
  let frac = 0;
  let scale = 100;
  for (let i = start + 9; i < end; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return Number.NaN;
    frac += c * scale;
    scale /= 10;
  }
  // A non-zero fraction below a millisecond still counts as sub-second (it would vanish in the sum).
  return ms + (frac > 0 && frac < 1 ? 1 : frac);
}
