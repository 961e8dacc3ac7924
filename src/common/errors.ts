/**
 * The base of every error aistock throws at an I/O boundary. `code` is a closed
 * SCREAMING_SNAKE name to switch on; `retryable` says whether trying again can help.
 */
export class AistockError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/**
 * A feature needs an optional peer dependency of aistock that is not installed (the inspector,
 * the live view, the PostgreSQL store): the message says what to install. Not retryable.
 */
export class OptionalPackageUnavailableError extends AistockError {
  /** The package to install. */
  readonly packageName: string;

  constructor(code: string, feature: string, packageName: string, versionRange: string, cause: unknown) {
    super(code, `${feature} needs the optional package ${packageName}, which is not installed: npm install ${packageName}@${versionRange}`, { cause });
    this.packageName = packageName;
  }
}

/** Whether a failed `import()` failed because `packageName` itself is not installed (a broken install of it — a dependency of its own gone — is another error, to rethrow). */
export function isPackageMissing(error: unknown, packageName: string): boolean {
  return (error as { code?: unknown } | null)?.code === 'ERR_MODULE_NOT_FOUND' && String((error as { message?: unknown }).message).includes(`'${packageName}'`);
}

/** The error an actor's `xstate.error.actor.*` event carries, described (see {@link describeError}). */
export function describeErrorEvent(event: unknown): string {
  return describeError((event as { error?: unknown } | null)?.error);
}

/** The message of any thrown value, for logs and reports. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
