/** TARGET_REPOSITORIES: which target repositories a deployment may write (lib/policy/targets.ts). */
import { describe, expect, it } from 'vitest';
import { checkTargetRepositories, repositoryAllowed } from '../../../lib/policy/targets.js';

describe('target repository patterns', () => {
  it('* matches any characters, / included; everything else literally', () => {
    expect(repositoryAllowed('anything/at/all', ['*'])).toBe(true);
    expect(repositoryAllowed('mirror/library/nginx', ['mirror/*'])).toBe(true);
    expect(repositoryAllowed('mirror', ['mirror/*'])).toBe(false);
    expect(repositoryAllowed('other/mirror/app', ['mirror/*'])).toBe(false); // anchored at the start
    expect(repositoryAllowed('mirror/app-old', ['mirror/app'])).toBe(false); // and at the end
    expect(repositoryAllowed('team/app', ['team/*/app'])).toBe(false);
    expect(repositoryAllowed('team/x/app', ['team/*/app'])).toBe(true);
  });

  it('regular-expression characters in a pattern are literal', () => {
    expect(repositoryAllowed('a.b', ['a.b'])).toBe(true);
    expect(repositoryAllowed('axb', ['a.b'])).toBe(false);
    expect(repositoryAllowed('a+b', ['a+b'])).toBe(true);
    expect(repositoryAllowed('aab', ['a+b'])).toBe(false);
    expect(repositoryAllowed('x(y)', ['x(y)'])).toBe(true);
  });

  it('one matching pattern of several is enough', () => {
    expect(repositoryAllowed('team/app', ['mirror/*', 'team/*'])).toBe(true);
    expect(repositoryAllowed('team/app', ['mirror/*', 'other/*'])).toBe(false);
    expect(repositoryAllowed('team/app', [])).toBe(false);
  });

  it('refuses the first target repository outside the patterns with REPOSITORY_NOT_ALLOWED, naming it and the patterns', () => {
    expect(() => checkTargetRepositories([{ repository: 'mirror/a' }], ['mirror/*'])).not.toThrow();
    expect(() =>
      checkTargetRepositories(
        [{ repository: 'mirror/a' }, { repository: 'team/b' }, { repository: 'x' }],
        ['mirror/*', 'y'],
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'REPOSITORY_NOT_ALLOWED',
        side: 'request',
        message: 'repository team/b is outside what this deployment may write (TARGET_REPOSITORIES: mirror/*, y)',
      }),
    );
  });
});
