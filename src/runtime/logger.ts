import { pino, type Logger as PinoLogger, type LoggerOptions } from 'pino';

export type Logger = PinoLogger;
export const Logger = Symbol.for('banyan.Logger');

/** Paths pino blanks out wherever they appear in a log line. Keys, not values: a secret has no shape. */
export const REDACTED_PATHS = [
  'password',
  'clientSecret',
  'accessToken',
  'access_token',
  'refreshToken',
  'securityToken',
  'sessionId',
  'authorization',
  '*.password',
  '*.clientSecret',
  '*.accessToken',
  '*.access_token',
  '*.refreshToken',
  '*.securityToken',
  '*.sessionId',
  '*.authorization',
  '*.Authorization',
  '*.*.password',
  '*.*.clientSecret',
  'headers.authorization',
  'headers.Authorization',
  'sasl.password',
];

/** The root logger: JSON lines on stdout (or `destination`), secrets redacted. */
export function createRootLogger(
  level: LoggerOptions['level'] = 'info',
  destination?: pino.DestinationStream,
): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'banyan' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

/** A component's logger: every line carries `{component, stage}`. */
export function componentLogger(root: Logger, component: string, stage: string): Logger {
  return root.child({ component, stage });
}
