/**
 * Errors with a stable `code`, so callers branch on codes and never on text.
 * The CLI maps them to exit codes in one place (src/cli/main.ts).
 */
export class FailProxyError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A profile or option is invalid (exit 2). */
export class ConfigError extends FailProxyError {
  constructor(message: string, options?: ErrorOptions) {
    super('config_error', message, options);
  }
}

/** The command line is wrong: unknown group, missing prompt, bad number (exit 2). */
export class UsageError extends FailProxyError {
  constructor(message: string, options?: ErrorOptions) {
    super('usage_error', message, options);
  }
}

/** The work itself failed: every endpoint failed, a probed group has no working endpoint (exit 1). */
export class WorkFailedError extends FailProxyError {
  constructor(message: string, options?: ErrorOptions) {
    super('work_failed', message, options);
  }
}

/** The user interrupted (Ctrl-C) (exit 130). */
export class InterruptedError extends FailProxyError {
  constructor(message = 'interrupted', options?: ErrorOptions) {
    super('interrupted', message, options);
  }
}
