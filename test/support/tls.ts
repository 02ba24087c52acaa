/**
 * A self-signed certificate for 127.0.0.1 (openssl, which the registry tests need anyway), for TLS servers that stand
 * in front of a registry or answer as one.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface SelfSigned {
  readonly key: Buffer;
  readonly cert: Buffer;
  /** The certificate's PEM file (for NODE_EXTRA_CA_CERTS). */
  readonly certFile: string;
}

/** Writes key.pem and cert.pem into `dir` (which must exist): valid one day, for IP 127.0.0.1. */
export async function selfSignedCertificate(dir: string): Promise<SelfSigned> {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  return { key: await readFile(keyFile), cert: await readFile(certFile), certFile };
}
