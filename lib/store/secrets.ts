/**
 * Inline credentials of a request at rest: AES-256-GCM with a random 96-bit IV per record, the job id
 * as additional authenticated data (a sealed record cannot be moved to another job), and a version
 * prefix so the format can change. The key comes from the CREDENTIAL_KEY setting (Key Vault in Azure).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { OciImportError } from '../errors.js';

export interface SealedSecret {
  readonly v: 1;
  readonly iv: string;
  readonly tag: string;
  readonly data: string;
}

export function seal(key: Buffer, jobId: string, plaintext: unknown): SealedSecret {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(jobId, 'utf8'));
  const data = Buffer.concat([cipher.update(JSON.stringify(plaintext), 'utf8'), cipher.final()]);
  return {
    v: 1,
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
}

export function open<T>(key: Buffer, jobId: string, sealed: SealedSecret): T {
  if (sealed.v !== 1)
    throw new OciImportError('SECRET_UNREADABLE', `unknown sealed secret version ${String(sealed.v)}`, {
      side: 'storage',
    });
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
  decipher.setAAD(Buffer.from(jobId, 'utf8'));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
  const text = Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
  return JSON.parse(text) as T;
}
