// Worker-thread bootstrap of bench/stream-servers.ts: registers the TypeScript loader, then runs it.
import { register } from 'tsx/esm/api';

register();
await import('./stream-servers.ts');
