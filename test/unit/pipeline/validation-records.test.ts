import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../shared/core/config/schema.js';
import { sleeveHash } from '../../../shared/core/config/sleeve-hash.js';
import { validationRecords } from '../../../shared/pipeline/steps/aggregate.js';

const spec = { jobId: 'j'.repeat(64), configHash: 'c'.repeat(64) };
const at = '2026-12-01T00:00:00.000Z';

describe('the validation records the aggregate step writes', () => {
  it('a sleeves config: one per sleeve, keyed by its id, with its hash and its own decision', () => {
    const config = parseConfig(readFileSync('config/multi-strategy.yaml', 'utf8'), 'multi.yaml');
    const account = { proceed: false, failed: ['sharpe'] };
    const own = new Map([
      ['trend', { proceed: true, failed: [] }],
      ['rsi', { proceed: false, failed: ['profitFactor'] }],
    ]);
    const records = validationRecords(config, spec, account, own, at);
    expect(records.map((r) => r.strategy)).toEqual(['trend', 'rsi', 'breakout', 'bollinger', 'volume']);
    for (const r of records) {
      expect(r.sleeveHash).toBe(sleeveHash(config, r.strategy));
      expect(r).toMatchObject({ configHash: spec.configHash, jobId: spec.jobId, decidedAt: at });
    }
    expect(records[0]).toMatchObject({ proceed: true, failed: [] });
    expect(records[1]).toMatchObject({ proceed: false, failed: ['profitFactor'] });
    // A sleeve without a decision of its own (none in the document) takes the job's.
    expect(records[2]).toMatchObject(account);
  });

  it('a single-strategy config: one record named after the config, with its sleeve hash', () => {
    const config = parseConfig(readFileSync('config/equity-strategy.yaml', 'utf8'), 'single.yaml');
    const decision = { proceed: true, failed: [] };
    expect(validationRecords(config, spec, decision, new Map(), at)).toEqual([
      {
        strategy: config.name,
        configHash: spec.configHash,
        sleeveHash: sleeveHash(config, config.name),
        ...decision,
        jobId: spec.jobId,
        decidedAt: at,
      },
    ]);
  });
});
