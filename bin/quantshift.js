#!/usr/bin/env node
// Entry for `npx quantshift`: runs the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('./quantshift.ts');
