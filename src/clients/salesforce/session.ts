import jsforce, { type Connection } from 'jsforce';
import type { SalesforceConfig } from '../../runtime/config';

/**
 * Opens a jsforce connection: the OAuth username-password flow when a username is configured,
 * the client-credentials flow otherwise. An expired session (401 INVALID_SESSION_ID) is renewed by
 * logging in again, since neither flow returns a refresh token. Every call carries
 * `Sforce-Call-Options: client=<callOptionsClient>`, which CDC reports as the change's origin.
 */
export async function connectSalesforce(config: SalesforceConfig): Promise<Connection> {
  const clientCredentials = (c: Connection) => c.authorize({ grant_type: 'client_credentials' });
  const conn = new jsforce.Connection({
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
  if (config.username) {
    await conn.login(config.username, config.password ?? '');
  } else {
    await clientCredentials(conn);
  }
  return conn;
}
