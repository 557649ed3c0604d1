import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalLiveStack, startLocalLiveStack } from '../../shared/adapters/local/live-stack.js';
import { invokeCommand } from '../../shared/cli/local.js';
import { LIVE_STEPS, liveEventSchema } from '../../shared/runtime/live.js';
import { testArtifactDir } from '../helpers/artifacts.js';
import { capture } from '../helpers/capture.js';

let stack: LocalLiveStack;
beforeAll(async () => {
  stack = await startLocalLiveStack({
    dataDir: 'data',
    startTime: '2021-03-18T12:00:00.000Z',
    configPath: 'config/equity-strategy.yaml',
    withCache: false,
  });
  Object.assign(process.env, stack.env);
});
afterAll(async () => {
  await stack.close();
});

describe('quantshift invoke', () => {
  it('runs one handler with an event file against the local stack, as sam local invoke does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qs-invoke-'));
    const eventPath = join(dir, 'event.json');
    writeFileSync(
      eventPath,
      JSON.stringify({ step: 'market-open-check', scheduledTime: '2021-03-18T13:00:00.000Z' }),
    );
    const out = capture();
    expect(
      await invokeCommand(['market-open-check', '--event', eventPath], {
        stdout: out.stream,
        stderr: capture().stream,
      }),
    ).toBe(0);
    expect(JSON.parse(out.text())).toMatchObject({ date: '2021-03-18', isOpen: true, earlyClose: false });
  });

  it('runs the kill switch with a CloudWatch alarm event (an OK transition is logged and ignored)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qs-invoke-'));
    const eventPath = join(dir, 'alarm.json');
    const state = (value: string) => ({
      value,
      reason:
        'Threshold Crossed: 1 out of the last 1 datapoints was not greater than or equal to the threshold (5.0).',
      timestamp: '2021-03-18T14:20:00.000+0000',
    });
    writeFileSync(
      eventPath,
      JSON.stringify({
        source: 'aws.cloudwatch',
        alarmArn: 'arn:aws:cloudwatch:us-east-1:111122223333:alarm:quantshift-paper-daily-loss',
        accountId: '111122223333',
        time: '2021-03-18T14:20:00.000+0000',
        region: 'us-east-1',
        alarmData: {
          alarmName: 'quantshift-paper-daily-loss',
          state: state('OK'),
          previousState: state('ALARM'),
          configuration: { metrics: [] },
        },
      }),
    );
    const out = capture();
    expect(
      await invokeCommand(['kill-switch', '--event', eventPath], {
        stdout: out.stream,
        stderr: capture().stream,
      }),
    ).toBe(0);
    expect(JSON.parse(out.text())).toMatchObject({ action: 'ignored', state: 'OK' });
    // A schedule payload is not an alarm event.
    writeFileSync(
      eventPath,
      JSON.stringify({ step: 'market-open-check', scheduledTime: '2021-03-18T13:00:00.000Z' }),
    );
    await expect(
      invokeCommand(['kill-switch', '--event', eventPath], {
        stdout: capture().stream,
        stderr: capture().stream,
      }),
    ).rejects.toThrow(/alarmData/);
  });

  it('refuses an unknown function and a bad event with one clear message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qs-invoke-'));
    const eventPath = join(dir, 'event.json');
    writeFileSync(eventPath, JSON.stringify({ step: 'market-open-check', scheduledTime: 'soon' }));
    const io = { stdout: capture().stream, stderr: capture().stream };
    await expect(invokeCommand(['trade-everything', '--event', eventPath], io)).rejects.toThrow(
      /unknown function "trade-everything"/,
    );
    await expect(invokeCommand(['market-open-check', '--event', eventPath], io)).rejects.toThrow(
      /scheduledTime/,
    );
  });

  it('a step on a day without a session record says to run the open check first; --with-open-check does', async () => {
    const dir = testArtifactDir('invoke');
    try {
      const eventPath = join(dir, 'signals.json');
      writeFileSync(
        eventPath,
        JSON.stringify({ step: 'generate-signals', scheduledTime: '2021-03-19T13:10:00Z' }),
      );
      const io = { stdout: capture().stream, stderr: capture().stream };
      await expect(invokeCommand(['generate-signals', '--event', eventPath], io)).rejects.toThrow(
        /no session record for 2021-03-19.*run `quantshift invoke market-open-check` for that day first, or add --with-open-check/,
      );
      const out = capture();
      const err = capture();
      const args = ['generate-signals', '--event', eventPath, '--with-open-check'];
      expect(await invokeCommand(args, { stdout: out.stream, stderr: err.stream })).toBe(0);
      expect(JSON.parse(out.text())).toMatchObject({ day: '2021-03-19', status: 'decided' });
      expect(err.text()).toMatch(/invoke: market-open-check first: \{"date":"2021-03-19","isOpen":true/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('docs/examples holds a valid event for every scheduled step, named after it', () => {
    for (const step of LIVE_STEPS) {
      const event = JSON.parse(readFileSync(`docs/examples/${step}.json`, 'utf8'));
      expect(liveEventSchema.parse(event)).toMatchObject({ step });
    }
  });
});
