/**
 * advlab's error classes. Bad input is reported early, with the name of the
 * argument, option or file at fault, so a user (or the CLI, which maps these to
 * exit code 2) can say exactly what to fix.
 */

/** Base class of every error advlab throws on purpose. */
export class AdvlabError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A caller passed a bad value: wrong shape, out of range, NaN, unknown name.
 * `argument` names the parameter or CLI option (e.g. `eps`, `--dataset`).
 */
export class InputError extends AdvlabError {
  constructor(
    readonly argument: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${argument}: ${problem}`, options);
  }
}

/**
 * A file is missing, truncated or not in the expected format.
 * `file` is the path that was read.
 */
export class FileFormatError extends AdvlabError {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/**
 * A file the caller gave as `argument` that turned out missing or malformed:
 * the FileFormatError (naming the file) becomes an InputError naming the
 * argument too (`classifier: runs/x/model.json: not valid JSON`), with the
 * original as its cause, so the CLI can say which option to fix. Other errors
 * are returned unchanged.
 */
export function forArgument(argument: string, e: unknown): unknown {
  return e instanceof FileFormatError ? new InputError(argument, e.message, { cause: e }) : e;
}

/** A `.catch` handler that rethrows through {@link forArgument}: `await loadX(path).catch(rethrowFor('classifier'))`. */
export function rethrowFor(argument: string): (e: unknown) => never {
  return (e) => {
    throw forArgument(argument, e);
  };
}

/** True for errors caused by the caller's input (CLI exit code 2). */
export function isInputError(e: unknown): e is InputError | FileFormatError {
  return e instanceof InputError || e instanceof FileFormatError;
}
