// Encoding of membership changes in `conf` log entries. JSON keeps them readable in a trace;
// decoding validates because entries arrive from peers.
import type { ConfChange } from './types.ts';
import { RaftError } from './errors.ts';

const TYPES: readonly ConfChange['type'][] = ['addLearner', 'promote', 'remove'];

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ type: cc.type, node: cc.node }));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch (cause) {
    throw new RaftError('ERR_BAD_MESSAGE', 'conf change entry is not valid JSON', { cause });
  }
  const v = value as { type?: unknown; node?: unknown };
  if (typeof v !== 'object' || v === null || !TYPES.includes(v.type as ConfChange['type'])) {
    throw new RaftError('ERR_BAD_MESSAGE', `conf change entry has an unknown type ${JSON.stringify(v?.type)}`);
  }
  if (typeof v.node !== 'string' || v.node.length === 0 || v.node.length > 128) {
    throw new RaftError('ERR_BAD_MESSAGE', 'conf change entry needs a node id of 1 to 128 characters');
  }
  return { type: v.type as ConfChange['type'], node: v.node };
}
