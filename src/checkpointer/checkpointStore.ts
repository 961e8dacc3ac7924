import { join } from 'node:path';
import { z } from 'zod';
import { AistockError } from '../common/errors.js';
import type { Clock } from '../common/clock.js';
import { atomicFileWriter, moveAside, readStateFile, writeStateFile, type FileWriter, type StateFileRead } from '../stateDir/stateFile.js';

/**
 * Where checkpoints live. The file store (one `<key>.json` per key in the state dir) is the
 * embedded default; the PostgreSQL store (src/postgresStore/) implements the same methods.
 */
export interface CheckpointStore {
  /** Persists every snapshot durably; rejects if any could not be written. */
  write(writes: readonly { key: string; snapshot: unknown }[]): Promise<void>;
  /** Reads a key's newest snapshot, validated by `schema`; a corrupt one is set aside. */
  read<T>(key: string, schema: z.ZodType<T>): Promise<StateFileRead<T>>;
  /** Sets a key's snapshot aside (it parsed but broke an invariant), never deleting it; answers where it went. */
  setAside(key: string): Promise<string>;
}

/** A checkpoint key that cannot be a file name. */
export class InvalidCheckpointKeyError extends AistockError {
  constructor(key: string) {
    super('INVALID_CHECKPOINT_KEY', `checkpoint key ${JSON.stringify(key)} must match ${KEY_PATTERN}`);
  }
}

const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
/** The envelope version of every checkpoint, in any store. */
export const CHECKPOINT_SCHEMA_VERSION = 1;

/** Checks that `key` can name a checkpoint file; throws {@link InvalidCheckpointKeyError}. */
export function assertCheckpointKey(key: string): void {
  if (!KEY_PATTERN.test(key) || key.includes('..')) throw new InvalidCheckpointKeyError(key);
}

/** The embedded store: `<dir>/<key>.json` envelopes, written atomically with fsync. */
export function fileCheckpointStore(options: { dir: string; clock: Clock; writer?: FileWriter }): CheckpointStore {
  const writer = options.writer ?? atomicFileWriter;
  const pathOf = (key: string): string => {
    assertCheckpointKey(key);
    return join(options.dir, `${key}.json`);
  };
  return {
    async write(writes) {
      for (const { key, snapshot } of writes) {
        await writeStateFile(pathOf(key), snapshot, { schema: z.unknown(), schemaVersion: CHECKPOINT_SCHEMA_VERSION }, options.clock, writer);
      }
    },
    read(key, schema) {
      return readStateFile(pathOf(key), { schema, schemaVersion: CHECKPOINT_SCHEMA_VERSION }, options.clock);
    },
    setAside: (key) => moveAside(pathOf(key), options.clock),
  };
}
