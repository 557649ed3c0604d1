import { describe, expect, it } from 'vitest';
import { type FlagSpecs, parseFlags } from '../../../shared/cli/args.js';

// Node's parseArgs with `allowNegative` reads `--no-record` as `record: false`; a flag declared as
// `no-<name>` (validate-paper's --no-record, replay's and local's --no-cache) must read as itself.
const specs: FlagSpecs = {
  'no-record': { type: 'boolean', help: 'x' },
  from: { type: 'string', value: '<d>', help: 'y' },
};

describe('flags declared as --no-<name>', () => {
  it('--no-record sets no-record, not record: false', () => {
    const flags = parseFlags('validate-paper', ['--from', '2021-03-22', '--no-record'], specs);
    expect(flags['no-record']).toBe(true);
    expect(flags.record).toBeUndefined();
  });

  it('absent, it stays unset', () => {
    expect(parseFlags('validate-paper', ['--from', '2021-03-22'], specs)['no-record']).toBeUndefined();
  });
});
