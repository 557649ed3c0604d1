#!/usr/bin/env node
// Entry for `npx quantshift`: runs the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';

// The AWS SDK is pinned to the last releases that support Node 20 (package.json), and the deployed
// functions run on Node 22: its notice that later releases need Node 22 is noise on every command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
await import('./quantshift.ts');
