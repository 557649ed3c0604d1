/**
 * Technical indicators. Each comes as an incremental class for live use (`update` per bar,
 * preallocated ring buffers, no allocation) and a batch function over a whole series that
 * runs the same class, so both give bit-identical results. Outputs are NaN during warm-up;
 * warm-up indices follow TA-Lib (see each class).
 */
export { Atr, atr, TrueRange, trueRange } from './atr.js';
export { Bollinger, type BollingerBands, bollinger, bollingerMeanDeviation } from './bollinger.js';
export { Ema, ema } from './ema.js';
export { Highest, highest, Lowest, lowest } from './extremes.js';
export { Macd, type MacdSeries, macd } from './macd.js';
export { Rsi, rsi } from './rsi.js';
export { Sma, sma } from './sma.js';
export { Wma, wma } from './wma.js';
