/** The CLI was called wrongly (an unknown flag, a missing value): exit status 2, with the usage. Depends on lib/errors.ts only. */
import { OciImportError } from '../errors.js';

export class UsageError extends OciImportError {
  override name = 'UsageError';
  constructor(message: string) {
    super('USAGE', message, { side: 'request' });
  }
}
