// Worker-thread bootstrap: registers the TypeScript loader, then runs the worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
