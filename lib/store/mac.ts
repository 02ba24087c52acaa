/**
 * Message authentication for what the app hands out and later takes back: its own queue step messages and
 * list continuation tokens. Whoever may write the import queue is a caller (users drop import requests
 * there), not the app: a step message the app did not write must do nothing, and a token the app did not
 * write must not steer a listing. So both carry an HMAC-SHA256 tag made with MESSAGE_KEY (a Key Vault
 * secret in Azure; the local host makes one), over a canonical encoding of everything they say, the job id
 * included — a tag taken from another job's message does not fit this job's.
 *
 * Each purpose has a key of its own, derived from the setting (HMAC of the purpose's name), so a tag made
 * for one can never pass as the other. MESSAGE_KEY_PREVIOUS (the key before a rotation) still verifies;
 * only MESSAGE_KEY signs. Tags are compared in constant time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { MessageKeys } from '../config.js';

export type MacPurpose = 'queue-step' | 'list-token';

/** base64url of 32 bytes, no padding. */
export const MAC_PATTERN = /^[A-Za-z0-9_-]{43}$/;

function purposeKey(key: Buffer, purpose: MacPurpose): Buffer {
  return createHmac('sha256', key).update(`oci-import ${purpose} v1`).digest();
}

function tagWith(key: Buffer, purpose: MacPurpose, content: string): Buffer {
  return createHmac('sha256', purposeKey(key, purpose)).update(content, 'utf8').digest();
}

/** The tag of `content` for `purpose`, made with the current key. */
export function macOf(keys: MessageKeys, purpose: MacPurpose, content: string): string {
  return tagWith(keys.current, purpose, content).toString('base64url');
}

/** Whether `tag` was made for `content` and `purpose` with the current key or the previous one. */
export function verifyMac(keys: MessageKeys, purpose: MacPurpose, content: string, tag: unknown): boolean {
  if (typeof tag !== 'string' || !MAC_PATTERN.test(tag)) return false;
  const given = Buffer.from(tag, 'base64url');
  return [keys.current, keys.previous].some(
    (key) => key !== undefined && timingSafeEqual(tagWith(key, purpose, content), given),
  );
}
