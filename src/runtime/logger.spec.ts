import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { componentLogger, createRootLogger } from './logger';

function capture(): { lines: () => Array<Record<string, unknown>>; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('root logger', () => {
  it('redacts secrets wherever a component logs them, and keeps component and stage on every line', () => {
    const { stream, lines } = capture();
    const log = componentLogger(createRootLogger('info', stream), 'source:users', 'import');
    log.info(
      {
        password: 'hunter2',
        config: { password: 'db-secret', clientSecret: 'sf-secret', user: 'banyan' },
        auth: { access_token: '00D!token', refreshToken: 'r' },
        headers: { authorization: 'Bearer 00D!token' },
      },
      'connected',
    );
    const [line] = lines();
    const text = JSON.stringify(line);
    for (const secret of ['hunter2', 'db-secret', 'sf-secret', '00D!token']) expect(text).not.toContain(secret);
    expect(line).toMatchObject({ component: 'source:users', stage: 'import', msg: 'connected', config: { user: 'banyan', password: '[redacted]' } });
  });
});
