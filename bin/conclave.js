#!/usr/bin/env node
// `conclave`: a Conclave member. Until the HA agent lands (step 2), a member is the consensus
// layer alone: a Raft member serving the replicated key-value store (src/raft/node/main.ts).
import { register } from 'tsx/esm/api';

register();
await import('../src/raft/node/main.ts');
