#!/usr/bin/env node
/**
 * The CDK app (cdk.json runs it with tsx): the stacks of one stage, `-c stage=paper` (the
 * default) or `-c stage=live`, checked by cdk-nag. Nothing here reaches AWS: `cdk synth` works
 * offline; `cdk deploy` is the only step that needs an account.
 */
import { App } from 'aws-cdk-lib';
import { CommitError } from '../lib/commit.js';
import { addQuantShiftStacks } from '../lib/quantshift-app.js';
import { AppContextError, StageError } from '../lib/stage.js';

const app = new App();
try {
  addQuantShiftStacks(app);
} catch (error) {
  if (error instanceof StageError || error instanceof AppContextError || error instanceof CommitError) {
    process.stderr.write(`error: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
app.synth();
