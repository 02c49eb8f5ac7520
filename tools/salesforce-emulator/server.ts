import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { grantToken, soapLogin, type TokenContext } from './auth.js';
import { type EmulatorAdmin, handleAdmin } from './admin.js';
import type { CometdServer } from './cometd.js';
import { ApiError, notFound, OAuthError } from './errors.js';
import { type EmulatorRequest, type EmulatorResponse, json, readBody, send } from './http.js';
import type { Org } from './org.js';
import { errorResponse, handleRest, listVersions } from './rest.js';

export interface ServerContext {
  org: Org;
  cometd: CometdServer;
  admin: EmulatorAdmin;
  apiVersion: string;
  tokenContext: () => TokenContext;
}

async function dispatch(ctx: ServerContext, req: EmulatorRequest, signal: AbortSignal): Promise<EmulatorResponse> {
  const { path, method } = req;
  if (path === '/services/oauth2/token' && method === 'POST') {
    const form = new URLSearchParams(req.body.trim() === '' ? req.query : req.body);
    try {
      return json(200, grantToken(form, ctx.tokenContext()));
    } catch (err) {
      if (err instanceof OAuthError) return json(err.status, { error: err.error, error_description: err.description });
      throw err;
    }
  }
  if (path === '/services/oauth2/revoke' && method === 'POST') {
    const token = new URLSearchParams(req.body.trim() === '' ? req.query : req.body).get('token');
    if (token) ctx.org.sessions.revoke(token);
    return { status: 200 };
  }
  const soap = /^\/services\/Soap\/u\/(\d+\.\d)\/?$/.exec(path);
  if (soap && method === 'POST') {
    const { status, body } = soapLogin(req.body, soap[1] as string, ctx.tokenContext());
    return { status, body, contentType: 'text/xml;charset=UTF-8' };
  }
  if ((path === '/services/data' || path === '/services/data/') && method === 'GET') return listVersions(ctx.apiVersion);
  if (path.startsWith('/services/data/')) return handleRest(ctx.org, req, ctx.apiVersion);
  const cometd = /^\/cometd\/(\d+\.\d)\/?$/.exec(path);
  if (cometd && method === 'POST') return ctx.cometd.handle(req, cometd[1] as string, signal);
  if (path.startsWith('/__admin/')) return handleAdmin(ctx.admin, req);
  return errorResponse(notFound());
}

/** The node:http listener: reads the body, routes, and answers unexpected failures as Salesforce's 500. */
export function requestListener(ctx: ServerContext): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const aborted = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) aborted.abort();
    });
    void (async () => {
      let response: EmulatorResponse;
      try {
        const url = new URL(req.url ?? '/', 'http://emulator');
        const body = await readBody(req);
        response = await dispatch(ctx, { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body }, aborted.signal);
      } catch (err) {
        response = err instanceof ApiError
          ? errorResponse(err)
          : errorResponse(new ApiError(500, 'UNKNOWN_EXCEPTION', `An unexpected error occurred: ${(err as Error).message}`));
      }
      send(res, response);
    })();
  };
}
