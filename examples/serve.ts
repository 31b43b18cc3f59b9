/**
 * Example HTTP service: classify 28×28 grayscale images with a trained model.
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-env examples/serve.ts \
 *   [--model FILE] [--port 8000] [--hostname 127.0.0.1]
 * ```
 *
 * The model is `--model FILE`, else `$DESIRE_MODEL`, else
 * `runs/quickstart/model-best.safetensors` (what the README's quick start writes).
 *
 * - `POST /classify` with one 28×28 image, light on dark (MNIST's convention), as
 *   - `image/png`: 8-bit gray, gray + alpha, RGB or RGBA (transparency over black);
 *   - `application/octet-stream`: exactly 784 bytes, row-major;
 *   - `application/json`: an array of 784 integers 0..255, or `{"image": [...]}`;
 *
 *   answers `200 {"class": n | null, "counts": [...], "ms": t}` (`class` is null when two
 *   classes tie for the top spike count; `ms` is the time spent classifying).
 * - `GET /health` answers `200 {"status": "ok", "model": {...}}`.
 *
 * Errors are JSON `{"error": "..."}`: 400 malformed body (the message says what is wrong),
 * 404 unknown path, 405 wrong method, 413 body over 64 KiB (counted while reading, whatever
 * Content-Length says), 415 unsupported Content-Type, 500 only for a bug.
 *
 * @example Classify raw pixels through the handler
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeModel, kaimingMaster, loadClassifier } from "../mod.ts";
 * import { createHandler } from "./serve.ts";
 *
 * const config = {
 *   sizes: [784, 32, 10], tsteps: 20, threshold: 1, decay: 2, margin: 4,
 *   desireHid: 0.05, desireOut: 0.3, dropIn: 0, dropHid: 0.3,
 * };
 * const classifier = await loadClassifier(encodeModel(
 *   { config, seed: 0, epoch: 0, dataset: "mnist", hyper: {} }, kaimingMaster(config.sizes, 0),
 * ));
 * const handler = createHandler(classifier);
 * const res = await handler(new Request("http://x/classify", {
 *   method: "POST",
 *   headers: { "content-type": "application/octet-stream" },
 *   body: new Uint8Array(784),
 * }));
 * assert.equal(res.status, 200);
 * assert.equal((await res.json()).counts.length, 10);
 * ```
 *
 * @module
 */
// The inference module alone (also exported by mod.ts, which adds the dataset loader and ~20 ms
// of start-up for its node:crypto import).
import {
  type Classification,
  type Classifier,
  loadClassifier,
  PngError,
  toImage,
} from "../src/classifier.ts";

/** Largest accepted request body. */
export const MAX_BODY_BYTES = 64 * 1024;
/** Model used when neither `--model` nor `$DESIRE_MODEL` is given. */
export const DEFAULT_MODEL = "runs/quickstart/model-best.safetensors";

/** Options of {@linkcode createHandler}. */
export interface HandlerOptions {
  /** Largest accepted request body in bytes (default 64 KiB). */
  maxBodyBytes?: number;
  /** Called with unexpected errors (answered with 500); default `console.error`. */
  onError?: (error: unknown) => void;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: HeadersInit = {}) {
    super(message);
  }
}

function json(status: number, body: unknown, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** The request body, refusing more than `limit` bytes whatever Content-Length claims. */
async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = () => new HttpError(413, `request body exceeds ${limit} bytes`);
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > limit) {
    await req.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      parts.push(value);
    }
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, `could not read the request body: ${(e as Error)?.message ?? e}`);
  }
  if (parts.length === 1) return parts[0];
  const body = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    body.set(p, o);
    o += p.length;
  }
  return body;
}

function parseJsonImage(body: Uint8Array): Uint8Array {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new HttpError(400, "JSON body is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `body is not valid JSON: ${(e as Error).message}`);
  }
  const usage = 'expected an array of 784 integers 0..255 or {"image": [...]}';
  let image: unknown = value;
  if (!Array.isArray(value)) {
    if (typeof value !== "object" || value === null || !("image" in value)) {
      throw new HttpError(400, `JSON body: ${usage}`);
    }
    image = (value as { image: unknown }).image;
    if (!Array.isArray(image)) {
      throw new HttpError(400, `JSON body: "image" is not an array; ${usage}`);
    }
  }
  try {
    return toImage(image);
  } catch (e) {
    throw new HttpError(400, `JSON body: ${(e as Error).message}`);
  }
}

async function classifyRequest(
  classifier: Classifier,
  req: Request,
  limit: number,
): Promise<Classification> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const accepted = "image/png, application/octet-stream or application/json";
  if (!["image/png", "application/octet-stream", "application/json"].includes(type)) {
    await req.body?.cancel().catch(() => {});
    throw new HttpError(
      415,
      type
        ? `unsupported Content-Type ${type}; send ${accepted}`
        : `no Content-Type; send ${accepted}`,
      { accept: "image/png, application/octet-stream, application/json" },
    );
  }
  const body = await readBody(req, limit);
  if (body.length === 0) throw new HttpError(400, "request body is empty");
  if (type === "image/png") {
    try {
      return await classifier.classifyPng(body);
    } catch (e) {
      if (e instanceof PngError) throw new HttpError(400, e.message);
      throw e;
    }
  }
  let image: Uint8Array;
  if (type === "application/octet-stream") {
    if (body.length !== 784) {
      throw new HttpError(
        400,
        `expected 784 bytes (a 28×28 grayscale image, row-major), got ${body.length}`,
      );
    }
    image = body;
  } else {
    image = parseJsonImage(body);
  }
  return classifier.classify(image);
}

/**
 * The request handler of the service.
 *
 * @param classifier The model to serve.
 * @param options Body limit and error hook.
 * @returns A handler for `Deno.serve` (or any `fetch`-style runtime). It never throws: every
 *   failure becomes a JSON error response.
 */
export function createHandler(
  classifier: Classifier,
  options: HandlerOptions = {},
): (req: Request) => Promise<Response> {
  const limit = options.maxBodyBytes ?? MAX_BODY_BYTES;
  const onError = options.onError ?? ((e: unknown) => console.error("serve: internal error:", e));
  const model = {
    shape: classifier.shape,
    dataset: classifier.dataset,
    epoch: classifier.info.epoch,
    testAccuracy: classifier.info.testAccuracy ?? null,
  };
  return async (req: Request): Promise<Response> => {
    try {
      const path = new URL(req.url).pathname;
      if (path === "/classify") {
        if (req.method !== "POST") {
          throw new HttpError(405, `use POST for /classify, not ${req.method}`, { allow: "POST" });
        }
        const r = await classifyRequest(classifier, req, limit);
        return json(200, { class: r.class, counts: r.counts, ms: r.ms });
      }
      if (path === "/health") {
        if (req.method !== "GET" && req.method !== "HEAD") {
          throw new HttpError(405, `use GET for /health, not ${req.method}`, {
            allow: "GET, HEAD",
          });
        }
        return json(200, { status: "ok", model });
      }
      throw new HttpError(404, `no route ${path}; use POST /classify or GET /health`);
    } catch (e) {
      if (e instanceof HttpError) return json(e.status, { error: e.message }, e.headers);
      try {
        onError(e);
      } catch { /* a failing logger must not take the handler down */ }
      const message = e instanceof Error ? e.message : String(e);
      return json(500, { error: `internal error: ${message}` });
    } finally {
      // Release an unread body (e.g. after a 404) so the connection is not left waiting.
      if (req.body && !req.bodyUsed) await req.body.cancel().catch(() => {});
    }
  };
}

/** Options of {@linkcode startServer}. */
export interface ServeOptions extends HandlerOptions {
  /** Interface to listen on (default 127.0.0.1). */
  hostname?: string;
  /** Port (default 8000; 0 picks a free one). */
  port?: number;
  /** Called once listening. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Aborting it shuts the server down. */
  signal?: AbortSignal;
}

/** Starts the service with `Deno.serve`; `server.addr` tells the port, `shutdown()` stops it. */
export function startServer(classifier: Classifier, options: ServeOptions = {}): Deno.HttpServer {
  return Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 8000,
    signal: options.signal,
    onListen: options.onListen ?? (() => {}),
  }, createHandler(classifier, options));
}

const USAGE = "usage: examples/serve.ts [--model FILE] [--port N] [--hostname HOST]";

function parseFlags(args: string[]): { model?: string; port: number; hostname: string } {
  const out: { model?: string; port: number; hostname: string } = {
    port: 8000,
    hostname: "127.0.0.1",
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].includes("=") ? args[i].split(/=(.*)/s) : [args[i]];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === "--model") out.model = value();
    else if (flag === "--hostname") out.hostname = value();
    else if (flag === "--port") {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) > 65535) throw new Error(`--port ${v} is not 0..65535`);
      out.port = Number(v);
    } else if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      Deno.exit(0);
    } else throw new Error(`unknown argument ${args[i]}`);
  }
  return out;
}

if (import.meta.main) {
  try {
    const flags = parseFlags(Deno.args);
    let env: string | undefined;
    try {
      env = Deno.env.get("DESIRE_MODEL");
    } catch { /* no --allow-env: use the default */ }
    const modelPath = flags.model ?? env ?? DEFAULT_MODEL;
    const classifier = await loadClassifier(modelPath);
    startServer(classifier, {
      hostname: flags.hostname,
      port: flags.port,
      onListen: ({ hostname, port }) => {
        console.log(
          `serving ${modelPath} (${classifier.shape.join("-")}, ${classifier.dataset}) on ` +
            `http://${hostname}:${port}/`,
        );
      },
    });
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}\n${USAGE}`);
    Deno.exit(1);
  }
}
