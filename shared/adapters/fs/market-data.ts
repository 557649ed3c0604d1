import { sliceSeries } from '../../core/market/align.js';
import type { BarSeries } from '../../core/market/types.js';
import type { DailyBarsRequest, MarketData } from '../../core/ports/market-data.js';
import { loadDataDir } from './bars.js';

/** {@link MarketData} from a folder of `<SYMBOL>.csv` files: the bundled data, for local pipeline runs. */
export class FolderMarketData implements MarketData {
  constructor(private readonly dir: string) {}

  async getDailyBars(request: DailyBarsRequest): Promise<BarSeries[]> {
    const from = Date.parse(`${request.from}T00:00:00Z`);
    const to = Date.parse(`${request.to}T00:00:00Z`);
    return loadDataDir(this.dir, request.symbols).map((series) => {
      let a = 0;
      while (a < series.time.length && (series.time[a] as number) < from) a++;
      let b = series.time.length;
      while (b > a && (series.time[b - 1] as number) > to) b--;
      return a === 0 && b === series.time.length ? series : sliceSeries(series, a, b);
    });
  }
}
