#!/usr/bin/env node
// `conclavectl`: the operator's command line (src/cli/conclavectl.ts).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/conclavectl.ts');
process.exitCode = await main(process.argv.slice(2));
