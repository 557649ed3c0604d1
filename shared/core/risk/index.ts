export * from './breaker-step.js';
export * from './breakers.js';
export * from './correlation.js';
export * from './rules.js';
export * from './sizing.js';
export * from './stops.js';
export * from './volatility.js';
