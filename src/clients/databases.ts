import type { Knex } from 'knex';
import type { BanyanConfig, DatabaseConfig } from '../runtime/config';
import { createKnex, type KnexLog } from './database';

/** The configured databases by name, each pool opened on first use and closed by `destroy()`. */
export class Databases {
  private readonly pools = new Map<string, Knex>();

  constructor(
    private readonly configs: BanyanConfig['databases'],
    private readonly log?: KnexLog,
  ) {}

  names(): string[] {
    return Object.keys(this.configs);
  }

  config(name: string): DatabaseConfig {
    const config = this.configs[name];
    if (!config) throw new Error(`no database named "${name}" in the configuration`);
    return config;
  }

  get(name: string): Knex {
    let pool = this.pools.get(name);
    if (!pool) {
      pool = createKnex(this.config(name), this.log);
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
