import { describe, expect, it } from 'vitest';
import { parseNcrontab, parseSchedule, parseTimeSpan, ScheduleError } from '../../scripts/host/ncrontab.js';

const utc = (s: string): Date => new Date(`${s}Z`);
const iso = (d: Date | null): string | null => (d ? d.toISOString().replace('.000Z', 'Z') : null);

/** The next `n` occurrences after `from`. */
function occurrences(expression: string, from: string, n: number): (string | null)[] {
  const schedule = parseNcrontab(expression);
  const out: (string | null)[] = [];
  let t: Date | null = utc(from);
  for (let i = 0; i < n && t; i++) {
    t = schedule.next(t);
    out.push(iso(t));
  }
  return out;
}

describe('NCRONTAB next occurrence (UTC)', () => {
  it.each([
    // expression, after, expected next
    ['* * * * * *', '2026-03-10T12:00:00.500', '2026-03-10T12:00:01Z'],
    ['* * * * * *', '2026-03-10T12:00:00', '2026-03-10T12:00:01Z'], // strictly after
    ['0 */5 * * * *', '2026-03-10T10:02:30', '2026-03-10T10:05:00Z'],
    ['0 0 * * * *', '2026-03-10T10:00:00', '2026-03-10T11:00:00Z'],
    ['0 0 * * * *', '2026-12-31T23:30:00', '2027-01-01T00:00:00Z'], // year roll-over
    ['30 15 9 * * MON-FRI', '2026-03-14T10:00:00', '2026-03-16T09:15:30Z'], // Saturday → Monday
    ['0 0 0 1 JAN *', '2026-03-10T00:00:00', '2027-01-01T00:00:00Z'],
    ['0 0 0 1 jan *', '2026-03-10T00:00:00', '2027-01-01T00:00:00Z'],
    ['0 0 0 1 January *', '2026-03-10T00:00:00', '2027-01-01T00:00:00Z'],
    ['0 0 0 * * SUN', '2026-03-10T00:00:00', '2026-03-15T00:00:00Z'],
    ['0 0 0 * * 0', '2026-03-10T00:00:00', '2026-03-15T00:00:00Z'],
    ['0 0 0 31 * *', '2026-04-01T00:00:00', '2026-05-31T00:00:00Z'], // April has no 31st
    ['0 0 0 29 2 *', '2026-03-01T00:00:00', '2028-02-29T00:00:00Z'], // next leap day
    ['0 0 0 13 * FRI', '2026-01-01T00:00:00', '2026-02-13T00:00:00Z'], // day AND day-of-week
    ['*/15 * * * *', '2026-03-10T10:07:00', '2026-03-10T10:15:00Z'], // five fields: second 0
    ['0 30 9 * * 1,3,5', '2026-03-10T09:31:00', '2026-03-11T09:30:00Z'],
  ])('%s after %s → %s', (expression, after, expected) => {
    expect(iso(parseNcrontab(expression).next(utc(after)))).toBe(expected);
  });

  it('steps, ranges and a/n start-to-max forms', () => {
    expect(occurrences('0 0 8-18/4 * * *', '2026-03-10T00:00:00', 4)).toEqual([
      '2026-03-10T08:00:00Z',
      '2026-03-10T12:00:00Z',
      '2026-03-10T16:00:00Z',
      '2026-03-11T08:00:00Z',
    ]);
    expect(occurrences('10/20 * * * * *', '2026-03-10T00:00:00', 4)).toEqual([
      '2026-03-10T00:00:10Z',
      '2026-03-10T00:00:30Z',
      '2026-03-10T00:00:50Z',
      '2026-03-10T00:01:10Z',
    ]);
    expect(occurrences('0 0 12 * JAN-MAR/2 *', '2026-01-30T13:00:00', 3)).toEqual([
      '2026-01-31T12:00:00Z',
      '2026-03-01T12:00:00Z',
      '2026-03-02T12:00:00Z',
    ]);
    expect(occurrences('5,10 0 0 1 1 *', '2026-06-01T00:00:00', 3)).toEqual([
      '2027-01-01T00:00:05Z',
      '2027-01-01T00:00:10Z',
      '2028-01-01T00:00:05Z',
    ]);
  });

  it('every Friday the 13th (NCrontab ANDs day and day-of-week)', () => {
    expect(occurrences('0 0 0 13 * 5', '2026-01-01T00:00:00', 3)).toEqual([
      '2026-02-13T00:00:00Z',
      '2026-03-13T00:00:00Z',
      '2026-11-13T00:00:00Z',
    ]);
  });

  it('an impossible date has no occurrence', () => {
    expect(parseNcrontab('0 0 0 30 2 *').next(utc('2026-01-01T00:00:00'))).toBeNull();
    expect(parseNcrontab('0 0 0 31 4 *').next(utc('2026-01-01T00:00:00'))).toBeNull();
  });

  it('exposes the parsed fields', () => {
    const { fields } = parseNcrontab('0 0 9-17 * * MON-FRI');
    expect(fields.hours.flatMap((v, i) => (v ? [i] : []))).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect(fields.daysOfWeek.flatMap((v, i) => (v ? [i] : []))).toEqual([1, 2, 3, 4, 5]);
    expect(fields.seconds.flatMap((v, i) => (v ? [i] : []))).toEqual([0]);
  });
});

describe('NCRONTAB errors', () => {
  it.each([
    ['* * * *', /expected 6 fields/],
    ['* * * * * * *', /expected 6 fields/],
    ['', /expected 6 fields/],
    ['60 * * * * *', /second.*outside 0-59/],
    ['* 60 * * * *', /minute.*outside 0-59/],
    ['* * 24 * * *', /hour.*outside 0-23/],
    ['* * * 0 * *', /day.*outside 1-31/],
    ['* * * * 13 *', /month.*outside 1-12/],
    ['* * * * * 7', /day-of-week.*outside 0-6/],
    ['*/0 * * * * *', /step '0' must be a positive integer/],
    ['*/x * * * * *', /step 'x'/],
    ['5-1 * * * * *', /reversed/],
    ['1,,2 * * * * *', /empty list element/],
    ['* * * * FOO *', /not a known month name/],
    ['* * * * * FUNDAY', /not a known day-of-week name/],
    ['MON * * * * *', /not a number between 0 and 59/],
    ['? * * * * *', /not a number/],
  ])('%j is refused', (expression, message) => {
    expect(() => parseNcrontab(expression)).toThrow(ScheduleError);
    expect(() => parseNcrontab(expression)).toThrow(message);
  });
});

describe('TimeSpan and interval schedules', () => {
  it.each([
    ['00:00:10', 10_000],
    ['00:05:00', 300_000],
    ['01:00', 3_600_000],
    ['1.02:03:04', ((26 * 60 + 3) * 60 + 4) * 1000],
    ['00:00:00.500', 500],
    ['00:00:00', 0],
  ])('%s = %i ms', (text, ms) => {
    expect(parseTimeSpan(text)).toBe(ms);
  });

  it.each(['10', '24:00:00', '00:60:00', 'abc', '00:00:61'])('%j is not a TimeSpan', (text) => {
    expect(() => parseTimeSpan(text)).toThrow(ScheduleError);
  });

  it('parseSchedule takes NCRONTAB first and a TimeSpan as a constant interval', () => {
    const cron = parseSchedule('*/10 * * * * *');
    expect(cron.kind).toBe('cron');
    const interval = parseSchedule('00:00:05');
    expect(interval.kind).toBe('interval');
    expect(iso(interval.next(utc('2026-03-10T00:00:00')))).toBe('2026-03-10T00:00:05Z');
    expect(() => parseSchedule('00:00:00')).toThrow(/longer than zero/);
    expect(() => parseSchedule('every minute')).toThrow(/expected 6 fields/);
    expect(parseSchedule('* * * * * *').describe()).toContain('every second');
  });
});
