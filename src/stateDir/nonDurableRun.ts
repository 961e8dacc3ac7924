import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AistockError } from '../common/errors.js';
import type { Clock } from '../common/clock.js';
import { syncDirectory, syncTree, type Durability } from './durability.js';
import { readStateFile, writeStateFile, type StateFileFormat } from './stateFile.js';

/**
 * The marker a research-mode (`durability: 'none'`) run keeps in its state dir: written (durably)
 * when the run starts, rewritten with `endedCleanly: true` once it has drained and the whole dir
 * was synced. A dir without it was only ever written with full durability.
 */
export const NON_DURABLE_MARKER_FILE = 'not-durable.json';

/** The marker's `data`. */
export const NonDurableMarkerSchema = z.object({
  durability: z.literal('none'),
  /** Wall time the latest research run over the dir started. */
  startedAt: z.number(),
  /** The latest research run drained, and the dir was synced after it. */
  endedCleanly: z.boolean(),
});
/** The marker's `data` (see {@link NonDurableMarkerSchema}). */
export type NonDurableMarker = z.infer<typeof NonDurableMarkerSchema>;

/**
 * The state dir was written by a research-mode run that did not end cleanly (a crash, a kill, a
 * fault): nothing it wrote was synced, so its journal, ledger and checkpoint may be torn or out
 * of step with one another, and no resume can trust them. Bad input (exit 2): start fresh.
 */
export class NonDurableStateDirError extends AistockError {
  readonly stateDir: string;

  /** `started`: when that run started (or why its marker could not be read). */
  constructor(stateDir: string, started: string) {
    super(
      'STATE_DIR_NOT_DURABLE',
      `state dir ${stateDir} holds a research-mode run (durability none, started ${started}) that did not end ` +
        'cleanly: nothing it wrote was fsynced, so it cannot be resumed safely; start fresh with a new --state-dir (or delete this one)',
    );
    this.stateDir = stateDir;
  }
}

const MARKER_FORMAT: StateFileFormat<NonDurableMarker> = { schema: NonDurableMarkerSchema, schemaVersion: 1 };

/** A run over a state dir, as {@link beginRun} opened it. */
export interface DurabilityRun {
  readonly durability: Durability;
  /** Call once the run drained without a fault, before the lock is released: records the clean end. */
  endCleanly(): Promise<void>;
}

/**
 * Checks the state dir's marker before anything in the dir is read or written (the lock held),
 * then records this run: refuses ({@link NonDurableStateDirError}) a dir whose research run did
 * not end cleanly, whatever `durability` this run asks for (a marker that does not parse counts
 * as such: set aside, and replaced by one that keeps refusing). A research run (`none`) writes the marker, durably: it is the one
 * write research mode syncs, so a power loss cannot forget that the dir is not to be trusted. A
 * durable run (`full`) over a dir a research run left cleanly removes the marker: that clean end
 * synced the whole dir, so from here on it is as durable as any.
 */
export async function beginRun(stateDir: string, durability: Durability, clock: Clock): Promise<DurabilityRun> {
  const path = join(stateDir, NON_DURABLE_MARKER_FILE);
  const found = await readStateFile(path, MARKER_FORMAT, clock);
  if (found.status === 'corrupt') {
    // Set aside by the read; a marker in its place keeps refusing the dir on every later start.
    await writeStateFile(path, { durability: 'none', startedAt: clock.wallMs(), endedCleanly: false }, MARKER_FORMAT, clock);
    throw new NonDurableStateDirError(stateDir, `unknown: its marker was unreadable and was moved to ${found.movedTo}`);
  }
  if (found.status === 'ok' && !found.data.endedCleanly) throw new NonDurableStateDirError(stateDir, new Date(found.data.startedAt).toISOString());
  if (durability === 'full') {
    if (found.status === 'ok') {
      await rm(path);
      await syncDirectory(stateDir);
    }
    return { durability, endCleanly: () => Promise.resolve() };
  }
  const startedAt = clock.wallMs();
  await writeStateFile(path, { durability, startedAt, endedCleanly: false }, MARKER_FORMAT, clock);
  return {
    durability,
    endCleanly: async () => {
      // Everything the run wrote reaches the disk before the marker says it may be trusted.
      await syncTree(stateDir);
      await writeStateFile(path, { durability, startedAt, endedCleanly: true }, MARKER_FORMAT, clock);
    },
  };
}
