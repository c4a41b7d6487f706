#!/usr/bin/env node
// `conclave <config.yml>`: one Conclave agent (Raft member, HA loop, PostgreSQL controller and
// REST API); see src/ha/main.ts.
import { register } from 'tsx/esm/api';

register();
await import('../src/ha/main.ts');
