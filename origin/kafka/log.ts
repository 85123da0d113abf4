import { type logCreator, logLevel } from 'kafkajs';
import type { Logger } from 'pino';

/** kafkajs log level matching a pino level, so kafkajs does not even format what pino would drop. */
export function kafkaLogLevel(logger: Logger): logLevel {
  switch (logger.level) {
    case 'silent':
      return logLevel.NOTHING;
    case 'fatal':
    case 'error':
      return logLevel.ERROR;
    case 'warn':
      return logLevel.WARN;
    case 'info':
      return logLevel.INFO;
    default:
      return logLevel.DEBUG;
  }
}

/** A kafkajs `logCreator` that writes through pino (component `kafka`, kafkajs namespace as `ns`). */
export function pinoLogCreator(logger: Logger): logCreator {
  const log = logger.child({ component: 'kafka' });
  return () =>
    ({ namespace, level, log: entry }) => {
      const { message, timestamp: _timestamp, ...extra } = entry;
      const fields = { ns: namespace, ...extra };
      if (level === logLevel.ERROR) log.error(fields, message);
      else if (level === logLevel.WARN) log.warn(fields, message);
      else if (level === logLevel.INFO) log.info(fields, message);
      else log.debug(fields, message);
    };
}
