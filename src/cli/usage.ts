import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AistockError, describeError } from '../common/errors.js';
import { EXIT, type CliIo } from './io.js';

/** A command line that is not one of the command's: the message names the flag or argument in plain words. */
export class UsageError extends AistockError {
  constructor(message: string) {
    super('BAD_USAGE', message);
  }
}

/**
 * `parseArgs` of node:util, its errors said in plain words (`unknown option --bogus`, `--tz needs a
 * value`, `unexpected argument "x"`) instead of Node's codes and its advice about `--`.
 */
export function parseCommandLine<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError(plainUsageMessage(error));
  }
}

function plainUsageMessage(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${quoted}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      // "Option '--tz <value>' argument missing", or a boolean given a value.
      return /argument missing/.test(message) ? `${quoted.replace(/ <value>$/, '')} needs a value` : `${quoted.replace(/ <value>$/, '')} takes no value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted)}`;
    default:
      return message;
  }
}

/** A usage error's plain message; any other error as `describeError` says it (with its code). */
export function describeUsageError(error: unknown): string {
  return error instanceof UsageError ? error.message : describeError(error);
}

/**
 * A command's options, or its exit code when the usage is the answer: `--help` prints it to
 * stdout (0); a command line that is not the command's prints what is wrong and the usage to
 * stderr (2).
 */
export function optionsOrExit<T extends object>(command: string, usage: string, io: CliIo, parse: () => T | 'help'): T | number {
  let options;
  try {
    options = parse();
  } catch (error) {
    io.stderr.write(`aistock ${command}: ${describeUsageError(error)}\n${usage}`);
    return EXIT.badInput;
  }
  if (options !== 'help') return options;
  io.stdout.write(usage);
  return EXIT.ok;
}
