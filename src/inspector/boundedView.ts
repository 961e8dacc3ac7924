import { describeError } from '../common/errors.js';

// What both inspectors (the Stately relay and the live view) are shown of a payload: a
// session's context runs to hundreds of kilobytes, which serialized whole slows a replay tenfold.

/** Items of an array the inspector is shown: the last ones (the latest bars, the newest ids). */
const ARRAY_ITEMS_SHOWN = 5;
/** Fields of an object or entries of a map the inspector is shown. */
const FIELDS_SHOWN = 50;
/** Values one event or snapshot shows at most, whatever its shape. */
const VALUES_SHOWN = 2_000;

/**
 * A copy of `value` small enough to inspect: long arrays keep their last items, wide objects
 * and maps their first fields (maps and sets become plain objects and arrays, bigints and errors strings),
 * each with a marker saying how much was left out, and no more than {@link VALUES_SHOWN} values.
 */
export function boundedView(value: unknown): unknown {
  let budget = VALUES_SHOWN;
  const copy = (item: unknown): unknown => {
    if (typeof item === 'bigint') return item.toString();
    if (typeof item !== 'object' || item === null) return item;
    if (budget <= 0) return '…';
    if (item instanceof Error) return describeError(item);
    const toJSON: unknown = Reflect.get(item, 'toJSON');
    if (typeof toJSON === 'function') {
      budget -= 1;
      return copy(toJSON.call(item));
    }
    if (Array.isArray(item) || item instanceof Set) {
      const all: readonly unknown[] = item instanceof Set ? [...item] : item;
      const shown = all.slice(-ARRAY_ITEMS_SHOWN);
      budget -= shown.length;
      const copies = shown.map(copy);
      return all.length > shown.length ? [`… ${all.length - shown.length} earlier`, ...copies] : copies;
    }
    const entries = item instanceof Map ? item.entries() : Object.entries(item).values();
    const size = item instanceof Map ? item.size : Object.keys(item).length;
    const shown: Record<string, unknown> = {};
    let count = 0;
    for (const [key, field] of entries) {
      if (count === FIELDS_SHOWN) break;
      count += 1;
      budget -= 1;
      shown[String(key)] = copy(field);
    }
    if (size > count) shown['…'] = `${size - count} more`;
    return shown;
  };
  return copy(value);
}
