// The history a checker reads: one record per client operation, in Jepsen's vocabulary
// (jepsen.md §1). Pure: no I/O, no clock. Times are whatever the harness's one monotonic
// clock said; only their order matters here.

export type OpKind = 'get' | 'put' | 'cas' | 'delete';

/**
 * `ok`: took effect exactly once, between invoke and completion. `fail`: definitely did not
 * take effect. `unknown` (Jepsen `info`: timeout, reset): may take effect at any time after
 * its invocation, or never.
 */
export type Outcome = 'ok' | 'fail' | 'unknown';

export interface Operation {
  id: number;
  client: string;
  kind: OpKind;
  key: string;
  /** put and cas: the value written. */
  value?: string;
  /** cas: the value that must be current; null means the key must be absent. */
  expected?: string | null;
  invokeTime: number;
  /** null when the outcome is unknown: such an operation stays concurrent with everything after it. */
  completeTime: number | null;
  outcome: Outcome;
  /** get with outcome ok: the value read, null when the key was absent. */
  result?: { value: string | null };
}

/** Events as the simulator records them. Completions pair with the client's open invocation. */
export type HistoryEvent =
  | {
      type: 'invoke';
      client: string;
      time: number;
      kind: OpKind;
      key: string;
      value?: string;
      expected?: string | null;
      /** Defaults to the invocation's position among all invocations (0, 1, 2, ...). */
      id?: number;
    }
  | { type: 'ok'; client: string; time: number; result?: { value: string | null } }
  | { type: 'fail'; client: string; time: number }
  | { type: 'info'; client: string; time: number };

export type HistoryErrorCode = 'ERR_BAD_HISTORY';

/** A malformed history is a harness bug, not a verdict on the system under test: it throws. */
export class HistoryError extends Error {
  readonly code: HistoryErrorCode = 'ERR_BAD_HISTORY';

  constructor(message: string) {
    super(message);
    this.name = 'HistoryError';
  }
}

/**
 * Pairs each invocation with the next completion from the same client (Jepsen pairs by
 * process the same way: a client has at most one operation open). An `info` completion, or
 * no completion before the history ends, gives outcome `unknown` with completeTime null.
 */
export function historyFromEvents(events: readonly HistoryEvent[]): Operation[] {
  const ops: Operation[] = [];
  const open = new Map<string, Operation>();
  for (const event of events) {
    if (event.type === 'invoke') {
      const pending = open.get(event.client);
      if (pending !== undefined) {
        throw new HistoryError(`client ${event.client} invoked at t=${event.time} while op #${pending.id} is still open`);
      }
      const op: Operation = {
        id: event.id ?? ops.length,
        client: event.client,
        kind: event.kind,
        key: event.key,
        invokeTime: event.time,
        completeTime: null,
        outcome: 'unknown',
      };
      if (event.value !== undefined) op.value = event.value;
      if (event.expected !== undefined) op.expected = event.expected;
      ops.push(op);
      open.set(event.client, op);
      continue;
    }
    const op = open.get(event.client);
    if (op === undefined) {
      throw new HistoryError(`client ${event.client} completed (${event.type}) at t=${event.time} with no open operation`);
    }
    open.delete(event.client);
    if (event.type === 'info') continue; // stays unknown, completeTime null
    op.outcome = event.type;
    op.completeTime = event.time;
    if (event.type === 'ok' && event.result !== undefined) op.result = { value: event.result.value };
  }
  for (const op of ops) validateOperation(op);
  return ops;
}

/** Throws a HistoryError naming the first thing wrong with `op`. */
export function validateOperation(op: Operation): void {
  const bad = (why: string): never => {
    throw new HistoryError(`op #${op.id} (${op.kind} ${op.key}): ${why}`);
  };
  if (!Number.isFinite(op.invokeTime)) bad('invokeTime is not a finite number');
  if (op.outcome !== 'unknown') {
    if (op.completeTime === null || !Number.isFinite(op.completeTime)) bad(`outcome ${op.outcome} needs a finite completeTime`);
    else if (op.completeTime < op.invokeTime) bad(`completes at ${op.completeTime}, before its invocation at ${op.invokeTime}`);
  }
  if ((op.kind === 'put' || op.kind === 'cas') && typeof op.value !== 'string') bad('needs a string value');
  if (op.kind === 'cas' && op.expected === undefined) bad('needs expected (a string, or null for absent)');
  if (op.kind === 'get' && op.outcome === 'ok' && op.result === undefined) bad('an ok get needs result.value');
}

/** A register value for humans: JSON-quoted, or `absent`. */
export function showValue(value: string | null | undefined): string {
  return value === null || value === undefined ? 'absent' : JSON.stringify(value);
}

/** One line for evidence and test messages, e.g. `#7 c2 get → "a" [12, 15] ok`. */
export function describeOperation(op: Operation): string {
  let what: string;
  switch (op.kind) {
    case 'get':
      what = op.outcome === 'ok' && op.result !== undefined ? `get → ${showValue(op.result.value)}` : 'get';
      break;
    case 'put':
      what = `put ${showValue(op.value)}`;
      break;
    case 'delete':
      what = 'delete';
      break;
    case 'cas':
      what = `cas ${showValue(op.expected)}→${showValue(op.value)}`;
      break;
  }
  const interval = op.outcome === 'unknown' || op.completeTime === null ? `[${op.invokeTime}, ∞)` : `[${op.invokeTime}, ${op.completeTime}]`;
  return `#${op.id} ${op.client} ${what} ${interval} ${op.outcome}`;
}
