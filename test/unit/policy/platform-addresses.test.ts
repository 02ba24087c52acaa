/**
 * Link-local and platform addresses are refused whatever ALLOWED_SOURCES says (issue 22, finding 6): a wildcard or
 * port-less pattern that names a host resolving to instance metadata must not open the way there. Checked at the
 * request (checkSource) and at connect time (connectAddresses, what the guarded dispatcher connects to) — without a
 * single packet: the lookups are the test's, and the refusal comes before any connection.
 */
import { describe, expect, it } from 'vitest';
import { checkSource, connectAddresses, isPlatformAddress, type Lookup } from '../../../lib/policy/sources.js';

const to =
  (...addresses: string[]): Lookup =>
  async () =>
    addresses;

describe('link-local and platform addresses', () => {
  it.each([
    '169.254.169.254',
    '169.254.0.1',
    '169.254.255.255',
    '168.63.129.16',
    'fd00:ec2::254',
    'fe80::1',
    '[fe80::a9fe:a9fe]',
    '::ffff:169.254.169.254',
    '::ffff:a9fe:a9fe',
  ])('%s is a platform address', (address) => expect(isPlatformAddress(address)).toBe(true));

  it.each(['10.1.2.3', '127.0.0.1', '::1', 'fd00:ec2::253', '168.63.129.17', '203.0.113.10'])(
    '%s is not one (private ones are allowed when named)',
    (address) => {
      expect(isPlatformAddress(address)).toBe(false);
    },
  );

  it.each([
    ['a wildcard pattern', '*.example.com', 'meta.example.com'],
    ['a port-less pattern', 'meta.example.com', 'meta.example.com:5000'],
    ['the exact host and port', 'meta.example.com:443', 'meta.example.com:443'],
  ])(
    '%s naming a host that resolves to 169.254.169.254 is refused at the request and at connect time',
    async (_what, pattern, registry) => {
      const allowed = ['*', pattern];
      for (const lookup of [to('169.254.169.254'), to('203.0.113.10', '168.63.129.16'), to('fd00:ec2::254')]) {
        await expect(checkSource(registry, allowed, lookup)).rejects.toMatchObject({
          code: 'PRIVATE_ADDRESS',
          message: expect.stringContaining('no ALLOWED_SOURCES pattern can allow'),
        });
        await expect(connectAddresses(registry.split(':')[0]!, registry, allowed, lookup)).rejects.toMatchObject({
          code: 'PRIVATE_ADDRESS',
        });
      }
    },
  );

  it('an IP literal of instance metadata named explicitly is refused too; a private registry named explicitly still connects', async () => {
    await expect(checkSource('169.254.169.254', ['169.254.169.254'], to())).rejects.toMatchObject({
      code: 'PRIVATE_ADDRESS',
    });
    await expect(checkSource('[fd00:ec2::254]:80', ['[fd00:ec2::254]:80'], to())).rejects.toMatchObject({
      code: 'PRIVATE_ADDRESS',
    });
    await expect(checkSource('10.1.2.3:5000', ['10.1.2.3:5000'], to())).resolves.toBeUndefined();
    expect(
      await connectAddresses('registry.internal', 'registry.internal:5000', ['*.internal'], to('10.1.2.3')),
    ).toEqual(['10.1.2.3']);
  });
});
