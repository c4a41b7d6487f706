// Framing for the streaming transport: each frame is a 4-byte big-endian length followed by one
// msgpack body (an array of messages, codec.ts), then on an authenticated stream the body's MAC.
// The receiver answers each frame with one ack byte.
import { encodeMessages } from './codec.ts';
import type { Message } from '../core/types.ts';
import { RaftError } from '../core/errors.ts';

export const ACK = Buffer.from([0x06]);

/**
 * One frame; with `sign` (an authenticated stream, auth.ts) the body is followed by its MAC and
 * the length covers both.
 */
export function encodeFrame(msgs: Message[], sign?: (body: Buffer) => Buffer): Buffer {
  const body = encodeMessages(msgs);
  const mac = sign ? sign(Buffer.from(body.buffer, body.byteOffset, body.byteLength)) : null;
  const length = body.byteLength + (mac?.length ?? 0);
  const frame = Buffer.allocUnsafe(4 + length);
  frame.writeUInt32BE(length, 0);
  frame.set(body, 4);
  if (mac) frame.set(mac, 4 + body.byteLength);
  return frame;
}

/** Reassembles frames from arbitrary chunks; refuses a frame longer than maxBytes before buffering it. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len > this.maxBytes) throw new RaftError('ERR_BAD_MESSAGE', `frame of ${len} bytes exceeds the limit of ${this.maxBytes}`);
      if (this.buffered < 4 + len) break;
      const all = this.take(4 + len);
      frames.push(all.subarray(4));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    return Buffer.concat(this.chunks, this.buffered).subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return all.subarray(0, n);
  }
}
