import type { z } from 'zod';
import { AistockError } from './errors.js';

/** One bad field of a config or file: its dotted path (`maxLeverage`, `positions.0.qty`) and why. */
export interface FieldIssue {
  readonly field: string;
  readonly message: string;
}

/** Every issue zod found, one per field path, so an error can list them all at once. */
export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    // An unknown key is reported on its parent; name the key itself so typos are easy to find.
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((key) => (path === '' ? key : `${path}.${key}`)) : [];
    return { field: keys.join(', ') || path || '(root)', message: issue.message };
  });
}

/** `field: message; field: message`, for an error's message. */
export function describeFieldIssues(issues: readonly FieldIssue[]): string {
  return issues.map((issue) => `${issue.field}: ${issue.message}`).join('; ');
}

/** A config, option set or snapshot that failed validation; `issues` names every bad field. */
export class FieldIssuesError extends AistockError {
  readonly issues: readonly FieldIssue[];

  constructor(code: string, subject: string, issues: readonly FieldIssue[]) {
    super(code, `invalid ${subject}: ${describeFieldIssues(issues)}`);
    this.issues = issues;
  }
}
