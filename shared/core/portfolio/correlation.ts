import { RollingCorrelation } from '../risk/correlation.js';
import type { SleeveCorrelationSettings } from './config.js';

/** A pair of sleeves whose rolling correlation crossed the threshold (or fell back under it). */
export interface CorrelationEvent {
  readonly time: number;
  readonly action: 'breach' | 'clear';
  readonly a: string;
  readonly b: string;
  readonly rho: number;
  /** The sleeve with the lower return over the window: its weight is cut while the breach lasts. */
  readonly weaker: string;
}

/**
 * Rolling correlation of the sleeves' daily returns. `check` reads only the returns pushed so far
 * (the caller checks before pushing the current session's), reports breaches and clears as events,
 * and keeps the cut multipliers of the weaker sleeves while their pair stays above the threshold.
 */
export class SleeveCorrelationMonitor {
  private readonly rolling: RollingCorrelation;
  private readonly recent: number[][] = [];
  private readonly open = new Map<string, { weaker: number }>();

  constructor(
    readonly ids: readonly string[],
    readonly settings: SleeveCorrelationSettings,
  ) {
    this.rolling = new RollingCorrelation(ids.length, settings.window);
  }

  push(returns: readonly number[]): void {
    this.rolling.push(returns);
    this.recent.push([...returns]);
    if (this.recent.length > this.settings.window) this.recent.shift();
  }

  /** The current matrix (NaN where undefined). */
  matrix(): number[][] {
    return this.rolling.matrix();
  }

  /** Breaches and clears at this point; `changed` says whether the cuts changed. */
  check(time: number): { events: CorrelationEvent[]; changed: boolean } {
    const n = this.ids.length;
    const events: CorrelationEvent[] = [];
    let changed = false;
    const growth = (i: number) => this.recent.reduce((acc, r) => acc + Math.log1p(r[i] as number), 0);
    for (let a = 0; a < n; a++) {
      for (let b = a + 1; b < n; b++) {
        const rho = this.rolling.correlation(a, b);
        const key = `${a}:${b}`;
        const was = this.open.get(key);
        const above = !Number.isNaN(rho) && Math.abs(rho) >= this.settings.threshold;
        if (above && was === undefined) {
          const weaker = growth(a) <= growth(b) ? a : b;
          this.open.set(key, { weaker });
          events.push({
            time,
            action: 'breach',
            a: this.ids[a] as string,
            b: this.ids[b] as string,
            rho,
            weaker: this.ids[weaker] as string,
          });
          changed = true;
        } else if (!above && was !== undefined) {
          this.open.delete(key);
          events.push({
            time,
            action: 'clear',
            a: this.ids[a] as string,
            b: this.ids[b] as string,
            rho,
            weaker: this.ids[was.weaker] as string,
          });
          changed = true;
        }
      }
    }
    return { events, changed: changed && this.settings.cut !== undefined };
  }

  /** The breaches open now (sleeve indices and the weaker one), for a persisted state. */
  openBreaches(): { a: number; b: number; weaker: number }[] {
    return [...this.open].map(([key, { weaker }]) => {
      const [a, b] = key.split(':').map(Number) as [number, number];
      return { a, b, weaker };
    });
  }

  /** Restores the open breaches of {@link openBreaches}. */
  restoreBreaches(breaches: readonly { a: number; b: number; weaker: number }[]): void {
    this.open.clear();
    for (const { a, b, weaker } of breaches) this.open.set(`${a}:${b}`, { weaker });
  }

  /** Weight multipliers: the cut for every sleeve that is the weaker one of an open breach. */
  cuts(): number[] {
    const cuts = this.ids.map(() => 1);
    if (this.settings.cut === undefined) return cuts;
    for (const { weaker } of this.open.values()) cuts[weaker] = this.settings.cut;
    return cuts;
  }
}
