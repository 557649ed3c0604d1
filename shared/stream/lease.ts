import { QuantShiftError } from '../core/errors.js';

/**
 * The right to hold the account's single market-data connection. Alpaca allows one stream
 * connection per account (error 406 for a second); a second consumer (a deploy that overlaps, an
 * operator's local run on the same keys) must refuse to connect rather than knock the first one
 * off. The lease is one item written with a condition and an expiry: it is ours when it is absent,
 * expired or already ours; the holder renews it well before it expires and releases it on exit.
 */
export interface ConnectionLease {
  /** Takes or renews the lease for `ttlMs` from `now` (epoch ms); false when another holder has it. */
  acquire(holder: string, now: number, ttlMs: number): Promise<boolean>;
  /** Gives the lease up if it is still ours. */
  release(holder: string): Promise<void>;
  /** The current holder and expiry, for messages. */
  read(): Promise<{ readonly holder: string; readonly expiresAt: number } | undefined>;
}

/** Another process holds the stream lease: this one does not open a connection. */
export class StreamLeaseHeldError extends QuantShiftError {}

/** An in-memory lease (tests, one-process local runs). */
export class MemoryLease implements ConnectionLease {
  private item: { holder: string; expiresAt: number } | undefined;
  async acquire(holder: string, now: number, ttlMs: number): Promise<boolean> {
    if (this.item !== undefined && this.item.holder !== holder && this.item.expiresAt > now) return false;
    this.item = { holder, expiresAt: now + ttlMs };
    return true;
  }
  async release(holder: string): Promise<void> {
    if (this.item?.holder === holder) this.item = undefined;
  }
  async read() {
    return this.item;
  }
}
