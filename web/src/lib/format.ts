// Client-side formatting. The node formats every string a screen shows (pvm-core `format`);
// these helpers only redo what changes between two messages (a countdown ticking) and format
// amounts the console edits, and they must agree with the node to the character.

/** Thousands separated by commas: 1250000 → "1,250,000". */
export function grouped(n: number): string {
  const sign = n < 0 ? '-' : '';
  const digits = String(Math.trunc(Math.abs(n)));
  let out = '';
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ',';
    out += digits[i];
  }
  return sign + out;
}

/**
 * A countdown: "12:04", or "1:02:03" from an hour up. Rounded up to the next whole second,
 * like the node, so a level reads "20:00" for its whole first second and "0:00" only at its end.
 */
export function countdown(ms: number): string {
  const total = Math.ceil(Math.max(0, ms) / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

const SYMBOLS: Record<string, string> = { EUR: '€', USD: '$', CAD: '$', AUD: '$', NZD: '$', GBP: '£' };

/** Amount in minor units: whole units without decimals ("1,250"), else two ("1,250.50"). */
export function money(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(Math.trunc(cents));
  const units = Math.floor(abs / 100);
  const rest = abs % 100;
  return rest === 0 ? `${sign}${grouped(units)}` : `${sign}${grouped(units)}.${String(rest).padStart(2, '0')}`;
}

/** Money with the currency's symbol where one is well known, else its code ("1,000 CHF"). */
export function moneyIn(cents: number, currency: string): string {
  const symbol = SYMBOLS[currency] ?? '';
  if (!symbol) return `${money(cents)} ${currency}`;
  return cents < 0 ? `-${symbol}${money(-cents)}` : `${symbol}${money(cents)}`;
}

/**
 * What the floor types ("50", "1,250.5", "€20") in minor units, or null when it is not an
 * amount. Exact: parsed as text, never through floating point, so "0.29" is 29 cents.
 */
export function parseMoney(text: string): number | null {
  const t = text.trim().replace(/^[€$£]/, '').replace(/,/g, '').trim();
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(t);
  if (!m) return null;
  const cents = Number(m[1]) * 100 + (m[2] ? Number(m[2].padEnd(2, '0')) : 0);
  return Number.isSafeInteger(cents) ? cents : null;
}

/** Chips the floor types ("25,000" or "25000"), or null. */
export function parseChips(text: string): number | null {
  const t = text.trim().replace(/,/g, '');
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : null;
}

/** 1 → "1st", 2 → "2nd", 11 → "11th", 22 → "22nd". */
export function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th';
  return `${n}${suffix}`;
}

/** "1 min", "5 min", "1:30" style lengths for a duration in seconds, used by the level editor. */
export function minutes(secs: number): string {
  return secs % 60 === 0 ? `${secs / 60} min` : countdown(secs * 1000);
}
