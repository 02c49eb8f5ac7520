import type { Knex } from 'knex';
import { createKnex, type DatabaseSettings, type KnexLog } from './database';

/** The configured databases by name, each pool opened on first use and closed by `destroy()`. */
export class Databases {
  private readonly pools = new Map<string, Knex>();

  constructor(
    private readonly configs: Record<string, DatabaseSettings>,
    private readonly log?: KnexLog,
  ) {}

  names(): string[] {
    return Object.keys(this.configs);
  }

  get(name: string): Knex {
    let pool = this.pools.get(name);
    if (!pool) {
      const settings = this.configs[name];
      if (!settings) throw new Error(`no database named "${name}" in the configuration`);
      pool = createKnex(settings, this.log);
      this.pools.set(name, pool);
    }
    return pool;
  }

  async destroy(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy()));
  }
}
