// Requests waiting for their answer from one remote peer (mirrors peer/requests.py).
//
// Bookkeeping only: open() numbers a request (ids from 1, per link) and
// returns the promise its answer settles; answer() settles it from a
// delivered response; discard() forgets one (timeout), after which a late
// answer is dropped. Requests and answers are ordinary session messages, so
// the path they took (relay or data channel) does not matter here.

/** A request got no answer: `.code` is "no-handler", "handler-error" or "timeout". */
export class RequestError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "RequestError";
    this.code = code;
    this.detail = message;
  }
}

export const REQUEST_ERROR_CODES = Object.freeze(["no-handler", "handler-error", "timeout"]);

export class Pending {
  constructor() {
    this._next = 1;
    this._open = new Map(); // id -> {resolve, reject}
  }

  get size() {
    return this._open.size;
  }

  /** [id, promise] of a new request. */
  open() {
    const id = this._next++;
    let settle;
    const promise = new Promise((resolve, reject) => {
      settle = { resolve, reject };
    });
    this._open.set(id, settle);
    return [id, promise];
  }

  discard(id) {
    this._open.delete(id);
  }

  /** Settle the request `message` answers; false when none waits for it. */
  answer(message) {
    const settle = this._open.get(message.response);
    if (!settle) return false;
    this._open.delete(message.response);
    if (message.error === null || message.error === undefined) settle.resolve(message.data);
    else {
      const detail = typeof message.data === "string" && message.data ? message.data : "the remote handler failed";
      settle.reject(new RequestError(message.error, detail));
    }
    return true;
  }

  failAll(err) {
    const open = [...this._open.values()];
    this._open.clear();
    for (const settle of open) settle.reject(err);
  }
}
