/**
 * NCRONTAB schedules as the Azure Functions timer trigger understands them (the NCrontab library):
 *
 *   {second} {minute} {hour} {day} {month} {day-of-week}      six fields (seconds first), or
 *   {minute} {hour} {day} {month} {day-of-week}                five fields (second = 0)
 *
 * Each field: `*`, a value, a range `a-b`, a step `a-b/n` or `a/n` (a to max, every n; `*` with `/n` for the whole range), or a comma list of
 * those. Months and days of week also take names, matched case-insensitively as prefixes the way
 * NCrontab does (`JAN`, `Jan`, `January`; `MON`, `Monday`); Sunday is 0, Saturday 6.
 *
 * Day-of-month and day-of-week are combined with AND (NCrontab semantics, unlike Vixie cron's OR):
 * `0 0 0 13 * FRI` fires on Friday the 13th only.
 *
 * All times are UTC (Flex Consumption and Linux plans do not support WEBSITE_TIME_ZONE).
 *
 * A TimeSpan (`hh:mm:ss`, `d.hh:mm:ss`) is also accepted as a constant interval, as the timer trigger
 * does on App Service plans.
 */

export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';
}

export interface Schedule {
  readonly kind: 'cron' | 'interval';
  /** The expression as written. */
  readonly expression: string;
  /** The first occurrence strictly after `after`, or null when there is none (e.g. `0 0 0 30 2 *`). */
  next(after: Date): Date | null;
  /** A short human description for the start-up banner. */
  describe(): string;
}

interface FieldSpec {
  readonly label: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const SECOND: FieldSpec = { label: 'second', min: 0, max: 59 };
const MINUTE: FieldSpec = { label: 'minute', min: 0, max: 59 };
const HOUR: FieldSpec = { label: 'hour', min: 0, max: 23 };
const DAY: FieldSpec = { label: 'day', min: 1, max: 31 };
const MONTH: FieldSpec = {
  label: 'month',
  min: 1,
  max: 12,
  names: [
    'January',
    'February',
    'March',
    'April',
    'May',
    'June',
    'July',
    'August',
    'September',
    'October',
    'November',
    'December',
  ],
};
const DAY_OF_WEEK: FieldSpec = {
  label: 'day-of-week',
  min: 0,
  max: 6,
  names: ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'],
};

/** Allowed values of one field: `allowed[v]` is true when v matches. */
export type FieldSet = readonly boolean[];

export interface CronFields {
  readonly seconds: FieldSet;
  readonly minutes: FieldSet;
  readonly hours: FieldSet;
  readonly days: FieldSet;
  readonly months: FieldSet;
  readonly daysOfWeek: FieldSet;
}

function parseValue(spec: FieldSpec, token: string, field: string): number {
  if (token === '') throw new ScheduleError(`'${field}' is not a valid ${spec.label} field: empty value`);
  if (/^\d+$/.test(token)) {
    const n = Number.parseInt(token, 10);
    if (n < spec.min || n > spec.max) {
      throw new ScheduleError(`'${field}' is not a valid ${spec.label} field: ${n} is outside ${spec.min}-${spec.max}`);
    }
    return n;
  }
  if (spec.names && /^[a-z]+$/i.test(token)) {
    const lower = token.toLowerCase();
    const index = spec.names.findIndex((name) => name.toLowerCase().startsWith(lower));
    if (index >= 0) return index + spec.min;
    throw new ScheduleError(`'${token}' is not a known ${spec.label} name (use one of ${spec.names.join(', ')})`);
  }
  throw new ScheduleError(
    `'${field}' is not a valid ${spec.label} field: '${token}' is not a number between ${spec.min} and ${spec.max}`,
  );
}

/** Parses one field (`*`, `5`, `1-5`, `10/5`, `MON-FRI`, stepped wildcards, lists of those). */
export function parseField(spec: FieldSpec, field: string): FieldSet {
  const allowed: boolean[] = new Array<boolean>(spec.max + 1).fill(false);
  if (field === '') throw new ScheduleError(`empty ${spec.label} field`);
  for (const part of field.split(',')) {
    if (part === '') throw new ScheduleError(`'${field}' is not a valid ${spec.label} field: empty list element`);
    let body = part;
    let step = 1;
    let explicitStep = false;
    const slash = part.indexOf('/');
    if (slash >= 0) {
      const stepText = part.slice(slash + 1);
      if (!/^\d+$/.test(stepText) || Number.parseInt(stepText, 10) === 0) {
        throw new ScheduleError(
          `'${field}' is not a valid ${spec.label} field: step '${stepText}' must be a positive integer`,
        );
      }
      step = Number.parseInt(stepText, 10);
      explicitStep = true;
      body = part.slice(0, slash);
    }
    let first: number;
    let last: number;
    if (body === '*') {
      first = spec.min;
      last = spec.max;
    } else {
      const dash = body.indexOf('-', 1);
      if (dash > 0) {
        first = parseValue(spec, body.slice(0, dash), field);
        last = parseValue(spec, body.slice(dash + 1), field);
        if (first > last) {
          throw new ScheduleError(`'${field}' is not a valid ${spec.label} field: range ${first}-${last} is reversed`);
        }
      } else {
        first = parseValue(spec, body, field);
        // NCrontab: `a/n` means from a to the field's maximum, every n.
        last = explicitStep ? spec.max : first;
      }
    }
    for (let v = first; v <= last; v += step) allowed[v] = true;
  }
  return allowed;
}

function isAll(set: FieldSet, spec: FieldSpec): boolean {
  for (let v = spec.min; v <= spec.max; v++) if (!set[v]) return false;
  return true;
}

/** Gregorian calendars repeat every 400 years: nothing within that window means never. */
const SEARCH_YEARS = 400;

function nextCron(fields: CronFields, after: Date): Date | null {
  // Strictly after `after`, at whole-second resolution.
  let t = Math.floor(after.getTime() / 1000) * 1000 + 1000;
  const maxYear = after.getUTCFullYear() + SEARCH_YEARS;
  for (;;) {
    const d = new Date(t);
    const year = d.getUTCFullYear();
    if (year > maxYear) return null;
    const month = d.getUTCMonth(); // 0-based
    if (!fields.months[month + 1]) {
      t = Date.UTC(year, month + 1, 1);
      continue;
    }
    const day = d.getUTCDate();
    if (!fields.days[day] || !fields.daysOfWeek[d.getUTCDay()]) {
      t = Date.UTC(year, month, day + 1);
      continue;
    }
    const hour = d.getUTCHours();
    if (!fields.hours[hour]) {
      t = Date.UTC(year, month, day, hour + 1);
      continue;
    }
    const minute = d.getUTCMinutes();
    if (!fields.minutes[minute]) {
      t = Date.UTC(year, month, day, hour, minute + 1);
      continue;
    }
    if (!fields.seconds[d.getUTCSeconds()]) {
      t += 1000;
      continue;
    }
    return d;
  }
}

/** Parses a five- or six-field NCRONTAB expression. Throws ScheduleError with a precise message. */
export function parseNcrontab(expression: string): Schedule & { readonly fields: CronFields } {
  const tokens = expression
    .trim()
    .split(/\s+/)
    .filter((t) => t !== '');
  if (tokens.length !== 6 && tokens.length !== 5) {
    throw new ScheduleError(
      `'${expression}' is not a valid NCRONTAB expression: expected 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5 (without seconds), got ${tokens.length}`,
    );
  }
  const six = tokens.length === 6;
  const [sec, min, hour, day, month, dow] = six ? tokens : ['0', ...tokens];
  const fields: CronFields = {
    seconds: parseField(SECOND, sec!),
    minutes: parseField(MINUTE, min!),
    hours: parseField(HOUR, hour!),
    days: parseField(DAY, day!),
    months: parseField(MONTH, month!),
    daysOfWeek: parseField(DAY_OF_WEEK, dow!),
  };
  const everySecond = [
    [fields.seconds, SECOND],
    [fields.minutes, MINUTE],
    [fields.hours, HOUR],
    [fields.days, DAY],
    [fields.months, MONTH],
    [fields.daysOfWeek, DAY_OF_WEEK],
  ].every(([set, spec]) => isAll(set as FieldSet, spec as FieldSpec));
  return {
    kind: 'cron',
    expression,
    fields,
    next: (after) => nextCron(fields, after),
    describe: () => (everySecond ? `${expression} (every second, UTC)` : `${expression} (UTC)`),
  };
}

/**
 * .NET TimeSpan text as used in host.json and interval schedules: `[d.]hh:mm[:ss[.fffffff]]`.
 * Returns milliseconds. (A bare number would mean days to .NET; it is refused to avoid surprises.)
 */
export function parseTimeSpan(text: string): number {
  const m = /^\s*(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?\s*$/.exec(text);
  if (!m) throw new ScheduleError(`'${text}' is not a TimeSpan (expected hh:mm:ss, d.hh:mm:ss or hh:mm:ss.fff)`);
  const days = m[1] ? Number(m[1]) : 0;
  const hours = Number(m[2]);
  const minutes = Number(m[3]);
  const seconds = m[4] ? Number(m[4]) : 0;
  const fraction = m[5] ? Number(`0.${m[5]}`) : 0;
  if (hours > 23 || minutes > 59 || seconds > 59) {
    throw new ScheduleError(`'${text}' is not a TimeSpan: hours must be 0-23, minutes and seconds 0-59`);
  }
  return Math.round((((days * 24 + hours) * 60 + minutes) * 60 + seconds + fraction) * 1000);
}

/** A timer trigger schedule: NCRONTAB first, then a TimeSpan interval (as the Functions host tries them). */
export function parseSchedule(expression: string): Schedule {
  let cronError: unknown;
  try {
    return parseNcrontab(expression);
  } catch (err) {
    cronError = err;
  }
  if (/^\s*(?:\d+\.)?\d{1,2}:\d{1,2}(?::\d{1,2}(?:\.\d+)?)?\s*$/.test(expression)) {
    const ms = parseTimeSpan(expression);
    if (ms <= 0) throw new ScheduleError(`'${expression}': an interval schedule must be longer than zero`);
    return {
      kind: 'interval',
      expression,
      next: (after) => new Date(after.getTime() + ms),
      describe: () => `every ${expression} (interval)`,
    };
  }
  throw cronError;
}
