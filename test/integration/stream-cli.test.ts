import { describe, expect, it } from 'vitest';
import { streamCommand } from '../../shared/cli/stream.js';
import { capture } from '../helpers/capture.js';

describe('quantshift stream --local --replay', () => {
  it('replays a synthesised session through a dropped connection, on the local stack, with one JSON summary on stdout', async () => {
    const out = capture();
    const err = capture();
    const code = await streamCommand(
      [
        '--local',
        '--replay',
        'data/SPY.csv',
        '--date',
        '2021-03-18',
        '--speed',
        '1000000',
        '--fault',
        'drop',
      ],
      { stdout: out.stream, stderr: err.stream },
    );
    expect(code).toBe(0);
    const summary = JSON.parse(out.text());
    expect(summary).toMatchObject({ day: '2021-03-18', symbol: 'SPY', bars: 390, reconnects: 1 });
    // Trades and quotes came through besides the bars (how many were lost while the connection was
    // down depends on how fast the reconnect is on a loaded machine; the missed bars were backfilled).
    expect(summary.messages).toBeGreaterThan(summary.bars);
    // The day's SPY entry filled at the open: the stream placed its protective stop.
    expect(summary.stopsPlaced).toBe(1);
    expect(err.text()).toContain('StreamHeartbeat');
  });

  it('names a bad fault', async () => {
    await expect(
      streamCommand(['--local', '--replay', 'data/SPY.csv', '--date', '2021-03-18', '--fault', 'meltdown'], {
        stdout: capture().stream,
        stderr: capture().stream,
      }),
    ).rejects.toThrow(/--fault meltdown: not a stream fault/);
  });
});
