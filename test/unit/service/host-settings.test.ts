/** host.json values the app reads itself, resolved as the Functions host does: the app setting override first. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  appFile,
  DEFAULT_MAX_DEQUEUE_COUNT,
  hostSetting,
  maxDequeueCount,
  readHostJson,
} from '../../../lib/service/host-settings.js';

const hostJson = { version: '2.0', extensions: { queues: { maxDequeueCount: 4 } } };

describe('maxDequeueCount', () => {
  it('takes AzureFunctionsJobHost__extensions__queues__maxDequeueCount over host.json, in any case', () => {
    expect(maxDequeueCount({ AzureFunctionsJobHost__extensions__queues__maxDequeueCount: '2' }, hostJson)).toBe(2);
    expect(maxDequeueCount({ AZUREFUNCTIONSJOBHOST__EXTENSIONS__QUEUES__MAXDEQUEUECOUNT: ' 7 ' }, hostJson)).toBe(7);
  });

  it('then host.json (keys in any case), then the extension default 5', () => {
    expect(maxDequeueCount({ OTHER: '1' }, hostJson)).toBe(4);
    expect(maxDequeueCount({}, { Extensions: { Queues: { MaxDequeueCount: 3 } } })).toBe(3);
    expect(maxDequeueCount({}, {})).toBe(DEFAULT_MAX_DEQUEUE_COUNT);
    expect(maxDequeueCount({ AzureFunctionsJobHost__extensions__queues__maxDequeueCount: '' }, {})).toBe(5);
  });

  it.each(['0', 'five', '2.5', '-1'])('refuses %j', (value) => {
    expect(() =>
      maxDequeueCount({ AzureFunctionsJobHost__extensions__queues__maxDequeueCount: value }, hostJson),
    ).toThrow(/maxDequeueCount/);
  });

  it('takes 1 (the smallest), skips a setting that is unset or blank, and refuses a host.json value of another type', () => {
    expect(maxDequeueCount({ AzureFunctionsJobHost__extensions__queues__maxDequeueCount: '1' }, hostJson)).toBe(1);
    expect(maxDequeueCount({ AzureFunctionsJobHost__extensions__queues__maxDequeueCount: undefined }, hostJson)).toBe(
      4,
    );
    expect(maxDequeueCount({ AzureFunctionsJobHost__extensions__queues__maxDequeueCount: '   ' }, hostJson)).toBe(5);
    expect(maxDequeueCount({}, { extensions: { queues: { maxDequeueCount: null } } })).toBe(5);
    expect(() => maxDequeueCount({}, { extensions: { queues: { maxDequeueCount: true } } })).toThrow(/maxDequeueCount/);
  });

  it('hostSetting reads any path', () => {
    expect(
      hostSetting({ AzureFunctionsJobHost__functionTimeout: '00:01:00' }, { functionTimeout: '00:10:00' }, [
        'functionTimeout',
      ]),
    ).toBe('00:01:00');
    expect(hostSetting({}, { functionTimeout: '00:10:00' }, ['functionTimeout'])).toBe('00:10:00');
    expect(hostSetting({}, { a: 1 }, ['a', 'b'])).toBeUndefined();
    expect(hostSetting({}, { a: null }, ['a', 'b'])).toBeUndefined();
    expect(hostSetting({}, { a: { c: 1 } }, ['a', 'b'])).toBeUndefined();
    expect(hostSetting({}, { a: { B: 2 } }, ['a', 'b'])).toBe(2);
  });
});

describe('host.json of the app', () => {
  const dir = mkdtempSync(join(tmpdir(), 'host-settings-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is found in the app root from functions/ and from dist/functions/', () => {
    const root = pathToFileURL(`${dir}/app/`).href;
    expect(appFile('host.json', `${root}functions/import-worker.ts`).href).toBe(`${root}host.json`);
    expect(appFile('host.json', `${root}dist/functions/import-worker.js`).href).toBe(`${root}host.json`);
  });

  it('the first readable candidate; none: {}', () => {
    const file = join(dir, 'host.json');
    writeFileSync(file, JSON.stringify(hostJson));
    expect(readHostJson([pathToFileURL(join(dir, 'missing.json')), pathToFileURL(file)])).toEqual(hostJson);
    expect(readHostJson([pathToFileURL(join(dir, 'missing.json'))])).toEqual({});
  });

  it('the repository host.json gives the app its maxDequeueCount', () => {
    const real = readHostJson([
      appFile('host.json', new URL('../../../functions/import-worker.ts', import.meta.url).href),
    ]);
    expect(maxDequeueCount({}, real)).toBe((real as typeof hostJson).extensions.queues.maxDequeueCount);
  });
});
