/**
 * Text from a bar file, made safe to print in an error message: every control character
 * (C0, DEL, C1, the Unicode line and paragraph separators) escaped as `\uXXXX`, so an escape
 * sequence in a file never reaches the terminal, and cut to `max` characters, so a 1 MiB
 * field is not echoed whole.
 */
export function printable(text: string, max = 500): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A value from a bar file, JSON-quoted (`"2025-13-01"`, `true`, `{"a":1}`) and cut to `max` characters. */
export function shownValue(value: unknown, max = 40): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return typeof value === 'string' ? JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text) : printable(text, max);
}
