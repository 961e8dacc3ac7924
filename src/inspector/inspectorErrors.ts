import { AistockError } from '../common/errors.js';

/** The inspector's port is taken by another server. */
export class InspectorPortInUseError extends AistockError {
  readonly port: number;

  constructor(port: number, cause: unknown) {
    super('INSPECTOR_PORT_IN_USE', `port ${port} is in use: pick another with --inspect PORT`, { cause });
    this.port = port;
  }
}

/** The inspector could not start (a port it may not bind, a client that never connected, …). */
export class InspectorStartError extends AistockError {
  constructor(message: string, cause?: unknown) {
    super('INSPECTOR_START_FAILED', message, { cause });
  }
}
