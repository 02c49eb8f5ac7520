import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/**
 * `scripts/stack.sh down` against a state folder of the test's own (BANYAN_STACK_STATE), whose pid
 * files name processes the test started: it must stop what was recorded, group and children, and
 * nothing else. Needs bash and /proc only.
 */
describe('stack.sh down', { timeout: 60_000 }, () => {
  let state: string;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    state = mkdtempSync(join(tmpdir(), 'banyan-stack-'));
    for (const part of ['kafka', 'registry', 'salesforce']) mkdirSync(join(state, part));
  });

  afterEach(() => {
    for (const child of children.splice(0)) {
      for (const target of [-child.pid!, child.pid!]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    rmSync(state, { recursive: true, force: true });
  });

  /** Starts bash in a session and process group of its own (as stack.sh starts each part), and waits until it says it is ready. */
  async function startGroup(script: string): Promise<number> {
    const ready = join(state, `ready-${children.length}`);
    // The ready file is written by a bash builtin: a `touch` child could still be in the group when counted.
    const child = spawn('bash', ['-c', `${script}\n: > ${ready}\nwait`], { detached: true, stdio: 'ignore' });
    children.push(child);
    while (!existsSync(ready)) await new Promise((r) => setTimeout(r, 20));
    return child.pid!;
  }

  function startPlain(command: string, args: string[]): number {
    const child = spawn(command, args, { stdio: 'ignore' });
    children.push(child);
    return child.pid!;
  }

  function startTime(pid: number): string {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19]!;
  }

  /** The same process still runs: same pid, same start time, not a zombie. */
  function alive(pid: number, start: string): boolean {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      return fields[0] !== 'Z' && fields[19] === start;
    } catch {
      return false;
    }
  }

  function groupMembers(pgid: number): number[] {
    const members: number[] = [];
    for (const entry of readdirProc()) {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
        if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
      } catch {
        // exited meanwhile
      }
    }
    return members;
  }

  function record(part: string, line: string): void {
    writeFileSync(join(state, part, 'pid'), `${line}\n`);
  }

  function down(grace = 30): Promise<{ code: number; stderr: string }> {
    return new Promise((resolve) => {
      const run = spawn('bash', ['scripts/stack.sh', 'down'], {
        env: { ...process.env, BANYAN_STACK_STATE: state, BANYAN_STACK_STOP_GRACE: String(grace) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      run.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      run.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    });
  }

  it('stops a recorded part with SIGTERM, its whole process group included, and leaves a `tail -f` of its log alive', async () => {
    const got = join(state, 'got');
    const leader = await startGroup(`trap 'echo TERM > ${got}; exit 0' TERM\nsleep 1000 &`);
    const members = groupMembers(leader);
    expect(members).toHaveLength(2); // bash and its sleep
    const starts = members.map(startTime);
    record('kafka', `${leader} ${startTime(leader)}`);
    writeFileSync(join(state, 'kafka', 'kafka.log'), '');
    const bystander = startPlain('tail', ['-f', join(state, 'kafka', 'kafka.log')]);
    const bystanderStart = startTime(bystander);

    const { code, stderr } = await down();

    expect(code).toBe(0);
    expect(stderr).toContain(`stopping Kafka (pid ${leader} and its process group)`);
    expect(stderr).not.toContain('SIGKILL');
    expect(readFileSync(got, 'utf8').trim()).toBe('TERM');
    expect(members.filter((pid, i) => alive(pid, starts[i]!))).toEqual([]);
    expect(alive(bystander, bystanderStart)).toBe(true);
    expect(existsSync(join(state, 'kafka', 'pid'))).toBe(false);
  });

  it('sends SIGKILL to the group only after the grace period, when SIGTERM is ignored', async () => {
    const leader = await startGroup(`trap '' TERM\nsleep 1000 &`);
    const members = groupMembers(leader);
    const starts = members.map(startTime);
    record('registry', `${leader} ${startTime(leader)}`);

    const { code, stderr } = await down(1);

    expect(code).toBe(0);
    expect(stderr).toContain('Schema Registry still runs 1 s after SIGTERM; sending SIGKILL');
    expect(members.filter((pid, i) => alive(pid, starts[i]!))).toEqual([]);
  });

  it('never signals a pid that is no longer the process started (another start time)', async () => {
    const stranger = startPlain('sleep', ['1000']);
    const start = startTime(stranger);
    record('salesforce', `${stranger} ${Number(start) + 1}`);

    const { code, stderr } = await down();

    expect(code).toBe(0);
    expect(stderr).toContain('nothing signalled');
    expect(alive(stranger, start)).toBe(true);
    expect(existsSync(join(state, 'salesforce', 'pid'))).toBe(false);
  });

  it('stops what is left of a group whose leader died', async () => {
    const leader = await startGroup('sleep 1000 &');
    const [orphan] = groupMembers(leader).filter((pid) => pid !== leader);
    const orphanStart = startTime(orphan!);
    record('kafka', `${leader} ${startTime(leader)}`);
    process.kill(leader, 'SIGKILL');
    while (groupMembers(leader).includes(leader)) await new Promise((r) => setTimeout(r, 20));

    const { code } = await down();

    expect(code).toBe(0);
    expect(alive(orphan!, orphanStart)).toBe(false);
  });

  it('believes a one-field pid file (older script) only when the command line carries the part’s path', async () => {
    const marker = join(state, 'salesforce', 'emulator.env');
    writeFileSync(marker, '');
    const ours = startPlain('tail', ['-f', marker]);
    const oursStart = startTime(ours);
    const stranger = startPlain('sleep', ['1001']);
    const strangerStart = startTime(stranger);
    record('salesforce', String(ours));
    record('registry', String(stranger));

    const { code } = await down();

    expect(code).toBe(0);
    expect(alive(ours, oursStart)).toBe(false);
    expect(alive(stranger, strangerStart)).toBe(true);
  });
});

function readdirProc(): string[] {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
}
