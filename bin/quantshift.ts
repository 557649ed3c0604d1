import { runCli } from '../shared/cli/main.js';

process.exitCode = await runCli(process.argv.slice(2));
