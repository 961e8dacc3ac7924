import { describe, expect, it } from 'vitest';
import { CommitQueue } from '../../src/common/commitQueue.js';

describe('CommitQueue (group commit)', () => {
  it('commits items pushed in one tick together, and items pushed during a commit together in the next', async () => {
    const commits: string[][] = [];
    let release: () => void = () => undefined;
    const firstHeld = new Promise<void>((resolve) => (release = resolve));
    const queue = new CommitQueue<string>(async (items) => {
      commits.push([...items]);
      if (commits.length === 1) await firstHeld;
    });
    const first = [queue.push('a'), queue.push('b')];
    await Promise.resolve(); // the first commit starts
    await Promise.resolve();
    const second = [queue.push('c'), queue.push('d'), queue.push('e')];
    release();
    await Promise.all([...first, ...second]);
    expect(commits).toEqual([['a', 'b'], ['c', 'd', 'e']]);
  });

  it('fails every item of a failed commit with its error, and commits the next items after it', async () => {
    let fail = true;
    const committed: string[] = [];
    const queue = new CommitQueue<string>(async (items) => {
      if (fail) throw new Error('disk full');
      committed.push(...items);
    });
    const failed = await Promise.allSettled([queue.push('a'), queue.push('b')]);
    expect(failed.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await queue.push('c');
    expect(committed).toEqual(['c']);
  });

  it('runs exclusive work alone, after the items pushed before it and before those pushed after', async () => {
    const log: string[] = [];
    const queue = new CommitQueue<string>(async (items) => void log.push(`commit ${items.join(',')}`));
    const done = [queue.push('a'), queue.exclusive(async () => void log.push('exclusive')), queue.push('b')];
    await Promise.all(done);
    expect(log).toEqual(['commit a', 'exclusive', 'commit b']);
  });

  it('rejects an exclusive run with its error, and goes on with what comes after', async () => {
    const queue = new CommitQueue<string>(async () => undefined);
    await expect(queue.exclusive(async () => Promise.reject(new Error('compaction failed')))).rejects.toThrow('compaction failed');
    await expect(queue.push('a')).resolves.toBeUndefined();
  });
});
