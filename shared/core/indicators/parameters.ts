import { InvalidParameterError } from '../errors.js';

/**
 * Checks a window length: an integer of at least 1. Returns it unchanged.
 * @throws InvalidParameterError naming `indicator` and `parameter` otherwise.
 */
export function requirePeriod(indicator: string, parameter: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidParameterError(
      `${indicator}: ${parameter} must be an integer >= 1, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Checks a multiplier: finite and strictly positive. Returns it unchanged.
 * @throws InvalidParameterError naming `indicator` and `parameter` otherwise.
 */
export function requirePositiveFinite(indicator: string, parameter: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new InvalidParameterError(
      `${indicator}: ${parameter} must be a finite number > 0, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Checks that parallel input arrays (high, low, close) have the same length.
 * @throws InvalidParameterError naming the first array whose length differs from `high`.
 */
export function requireSameLength(
  indicator: string,
  high: ArrayLike<number>,
  low: ArrayLike<number>,
  close: ArrayLike<number>,
): number {
  const length = high.length;
  if (low.length !== length || close.length !== length) {
    const parameter = low.length !== length ? 'low' : 'close';
    const actual = low.length !== length ? low.length : close.length;
    throw new InvalidParameterError(
      `${indicator}: ${parameter} has ${actual} values but high has ${length}; the arrays must be parallel`,
    );
  }
  return length;
}
