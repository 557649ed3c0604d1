export * from './align.js';
export * from './csv.js';
export * from './types.js';
