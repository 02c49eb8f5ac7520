import jsforce, { type Connection } from 'jsforce';

/** The config's `salesforce` section, as far as a connection needs it. */
export interface SalesforceSettings {
  loginUrl: string;
  apiVersion: string;
  username?: string | undefined;
  password?: string | undefined;
  clientId: string;
  clientSecret: string;
  /** Sent as `Sforce-Call-Options: client=…`; CDC reports it as changeOrigin. */
  callOptionsClient: string;
}

/**
 * A jsforce connection, not yet logged in. Every call carries
 * `Sforce-Call-Options: client=<callOptionsClient>`, which CDC reports as the change's origin.
 * An expired session (401 INVALID_SESSION_ID) is renewed by logging in again (`refreshFn`), since
 * neither flow Banyan uses returns a refresh token.
 */
export function createConnection(config: SalesforceSettings): Connection {
  return new jsforce.Connection({
    oauth2: { loginUrl: config.loginUrl, clientId: config.clientId, clientSecret: config.clientSecret },
    loginUrl: config.loginUrl,
    version: config.apiVersion,
    callOptions: { client: config.callOptionsClient },
    // `login()` installs its own username-password renewal; client credentials need this one.
    refreshFn: (c, callback) => {
      clientCredentials(c).then(
        () => callback(null, c.accessToken ?? undefined),
        (error: Error) => callback(error),
      );
    },
  });
}

/**
 * Logs in: the OAuth username-password flow when a username is configured, the client-credentials
 * flow otherwise. Also what renews a session that ended.
 */
export async function login(conn: Connection, config: SalesforceSettings): Promise<void> {
  if (config.username) {
    await conn.login(config.username, config.password ?? '');
  } else {
    await clientCredentials(conn);
  }
}

function clientCredentials(conn: Connection): Promise<unknown> {
  return conn.authorize({ grant_type: 'client_credentials' });
}

/** A logged-in connection (for one-off uses such as `doctor`; pipelines use SalesforceClient). */
export async function connectSalesforce(config: SalesforceSettings): Promise<Connection> {
  const conn = createConnection(config);
  await login(conn, config);
  return conn;
}
