// Test helpers for the key-value state machine: a driver that feeds it consecutive log entries
// (each client with its own seq counter), and a matcher for RaftError codes.
import assert from 'node:assert/strict';
import { RaftError } from '../core/errors.ts';
import { encodeCommand } from './commands.ts';
import type { KvOp, KvResult } from './commands.ts';
import { KvStateMachine } from './state-machine.ts';
import type { ApplyResult } from './state-machine.ts';

export class Log {
  readonly sm: KvStateMachine;
  index: number;
  private seqs = new Map<string, number>();

  constructor(sm = new KvStateMachine()) {
    this.sm = sm;
    this.index = sm.appliedIndex;
  }

  raw(data: Uint8Array): ApplyResult {
    return this.sm.apply(++this.index, data);
  }

  send(clientId: string, seq: number, op: KvOp): ApplyResult {
    return this.raw(encodeCommand({ clientId, seq, op }));
  }

  /** A new command from `clientId` (next seq), with the whole apply outcome. */
  apply(op: KvOp, clientId = 'c1'): ApplyResult {
    const seq = (this.seqs.get(clientId) ?? 0) + 1;
    this.seqs.set(clientId, seq);
    return this.send(clientId, seq, op);
  }

  /** A new command from `clientId` (next seq); returns its result. */
  run(op: KvOp, clientId = 'c1'): KvResult {
    const result = this.apply(op, clientId).result;
    assert.ok(result !== null);
    return result;
  }
}

export const hasCode = (code: string, field?: string) => (err: unknown): boolean => {
  assert.ok(err instanceof RaftError, `expected RaftError, got ${String(err)}`);
  assert.equal(err.code, code);
  if (field !== undefined) assert.ok(err.message.includes(field), `message "${err.message}" should name ${field}`);
  return true;
};
