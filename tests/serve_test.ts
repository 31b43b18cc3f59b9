// examples/serve.ts over real HTTP on loopback: a server on 127.0.0.1 with an ephemeral port,
// fetch requests of every accepted kind and every bad case, then shutdown. The model is a
// 784-64-10 network trained in memory on 2,000 MNIST samples (untrained if MNIST is missing).
import assert from "node:assert/strict";
import { loadClassifier } from "../mod.ts";
import { createHandler, MAX_BODY_BYTES, startServer } from "../examples/serve.ts";
import {
  chunk,
  encodePng,
  grayPng,
  ihdrData,
  randomBytes,
  smallModel,
} from "./classifier_fixtures.ts";

const SERVE = new URL("../examples/serve.ts", import.meta.url);

Deno.test("examples/serve.ts over HTTP", async (t) => {
  const { bytes, data } = await smallModel(2000);
  const classifier = await loadClassifier(bytes);
  const errors: unknown[] = [];
  let listening!: (a: Deno.NetAddr) => void;
  const ready = new Promise<Deno.NetAddr>((r) => listening = r);
  const server = startServer(classifier, {
    hostname: "127.0.0.1",
    port: 0,
    onListen: (a) => listening(a),
    onError: (e) => errors.push(e),
  });
  const addr = await ready;
  assert.equal(addr.hostname, "127.0.0.1");
  assert.ok(addr.port > 0);
  const base = `http://127.0.0.1:${addr.port}`;

  const images: Uint8Array[] = [];
  for (let k = 0; k < 8; k++) {
    images.push(data ? data.test.images.slice(784 * k, 784 * (k + 1)) : randomBytes(784, k + 1));
  }
  const expected = images.map((im) => classifier.classify(im));

  const post = (body: BodyInit | Uint8Array | null, type?: string, path = "/classify") =>
    fetch(base + path, {
      method: "POST",
      headers: type ? { "content-type": type } : {},
      body: body instanceof Uint8Array ? body.slice() : body,
    });
  /** The response's status and JSON body (always JSON). */
  const call = async (res: Promise<Response>) => {
    const r = await res;
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
    return { status: r.status, body: await r.json(), headers: r.headers };
  };
  const expectOk = async (res: Promise<Response>, k: number) => {
    const { status, body } = await call(res);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(Object.keys(body).sort(), ["class", "counts", "ms"]);
    assert.equal(body.class, expected[k].class);
    assert.deepEqual(body.counts, expected[k].counts);
    assert.ok(typeof body.ms === "number" && body.ms >= 0);
  };
  const expectError = async (res: Promise<Response>, status: number, message: RegExp) => {
    const r = await call(res);
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body), ["error"]);
    assert.match(r.body.error, message);
    return r;
  };

  try {
    await t.step("GET /health", async () => {
      const { status, body } = await call(fetch(`${base}/health`));
      assert.equal(status, 200);
      assert.equal(body.status, "ok");
      assert.deepEqual(body.model.shape, [784, 64, 10]);
      assert.equal(body.model.dataset, "mnist");
      const head = await fetch(`${base}/health`, { method: "HEAD" });
      assert.equal(head.status, 200);
      await head.body?.cancel();
    });

    await t.step("image/png", async () => {
      for (let k = 0; k < 4; k++) await expectOk(post(await grayPng(images[k]), "image/png"), k);
      // RGBA with the gray value in every colour channel and full alpha: the same image.
      const rgba = new Uint8Array(784 * 4);
      images[4].forEach((v, i) => rgba.set([v, v, v, 255], 4 * i));
      const png = await encodePng({ width: 28, height: 28, colorType: 6, pixels: rgba });
      await expectOk(post(png, "image/png"), 4);
    });

    await t.step("application/octet-stream: 784 raw bytes", async () => {
      for (let k = 0; k < 4; k++) await expectOk(post(images[k], "application/octet-stream"), k);
    });

    await t.step("application/json: an array or {image: [...]}", async () => {
      await expectOk(post(JSON.stringify(Array.from(images[5])), "application/json"), 5);
      await expectOk(
        post(JSON.stringify({ image: Array.from(images[6]) }), "application/json; charset=utf-8"),
        6,
      );
      await expectOk(post(JSON.stringify(Array.from(images[7])), "Application/JSON"), 7);
    });

    await t.step("many requests at once", async () => {
      await Promise.all(
        Array.from(
          { length: 24 },
          (_, i) => expectOk(post(images[i % 8], "application/octet-stream"), i % 8),
        ),
      );
    });

    await t.step("413: oversized bodies, with or without Content-Length", async () => {
      const big = new Uint8Array(MAX_BODY_BYTES + 1);
      await expectError(post(big, "application/octet-stream"), 413, /exceeds 65536 bytes/);
      await expectError(post(big, "image/png"), 413, /exceeds/);
      // A streamed (chunked) body carries no Content-Length: the limit is counted while reading.
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent >= 200 * 1024) return c.close();
          sent += 8192;
          c.enqueue(new Uint8Array(8192));
        },
      });
      await expectError(post(stream, "application/json"), 413, /exceeds 65536 bytes/);
      // Exactly at the limit is read (and then rejected for what it is, not its size).
      await expectError(
        post(new Uint8Array(MAX_BODY_BYTES), "application/octet-stream"),
        400,
        /expected 784 bytes .* got 65536/,
      );
    });

    await t.step(
      "413 from the handler itself for a stream that lies about its length",
      async () => {
        // The handler alone (no HTTP layer to check Content-Length): a body longer than declared.
        const handler = createHandler(classifier, { maxBodyBytes: 1000 });
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new Uint8Array(600));
            c.enqueue(new Uint8Array(600));
            c.close();
          },
        });
        const res = await handler(
          new Request("http://x/classify", {
            method: "POST",
            headers: { "content-type": "application/octet-stream", "content-length": "10" },
            body,
          }),
        );
        assert.equal(res.status, 413);
        assert.match((await res.json()).error, /exceeds 1000 bytes/);
      },
    );

    await t.step("415: unsupported or missing Content-Type", async () => {
      const r = await expectError(
        post(images[0], "text/plain"),
        415,
        /unsupported Content-Type text\/plain; send image\/png, application\/octet-stream or application\/json/,
      );
      assert.match(r.headers.get("accept") ?? "", /image\/png/);
      await expectError(post(images[0], "image/jpeg"), 415, /image\/jpeg/);
      await expectError(post(images[0], "multipart/form-data; boundary=x"), 415, /multipart/);
      await expectError(post(images[0], undefined), 415, /no Content-Type/);
    });

    await t.step("400: malformed PNGs, named", async () => {
      const png = await grayPng(images[0]);
      const badCrc = png.slice();
      badCrc[40] ^= 1;
      await expectError(post(badCrc, "image/png"), 400, /CRC mismatch/);
      await expectError(post(png.subarray(0, 60), "image/png"), 400, /truncated/);
      await expectError(post(images[0], "image/png"), 400, /not a PNG: bad signature/);
      await expectError(
        post(await encodePng({ width: 32, height: 32, pixels: new Uint8Array(1024) }), "image/png"),
        400,
        /PNG is 32×32 pixels; the classifier takes 28×28/,
      );
      const huge = new Uint8Array([
        137,
        80,
        78,
        71,
        13,
        10,
        26,
        10,
        ...chunk("IHDR", ihdrData(100000, 100000)),
      ]);
      await expectError(post(huge, "image/png"), 400, /100000×100000/);
      await expectError(
        post(
          await encodePng({ width: 28, height: 28, colorType: 2, pixels: new Uint8Array(2352) })
            .then((p) => {
              p[8 + 8 + 8] = 16; // bit depth 16 (CRC now wrong too: the CRC is checked first)
              return p;
            }),
          "image/png",
        ),
        400,
        /CRC mismatch in chunk IHDR/,
      );
    });

    await t.step("400: wrong length and empty bodies", async () => {
      await expectError(
        post(images[0].subarray(0, 783), "application/octet-stream"),
        400,
        /expected 784 bytes .* got 783/,
      );
      await expectError(post(new Uint8Array(785), "application/octet-stream"), 400, /got 785/);
      await expectError(post(null, "application/octet-stream"), 400, /request body is empty/);
      await expectError(
        post(JSON.stringify(new Array(783).fill(0)), "application/json"),
        400,
        /783 values; expected 784 pixels/,
      );
    });

    await t.step("400: bad JSON, named", async () => {
      const cases: [string | Uint8Array, RegExp][] = [
        ["[1, 2,", /not valid JSON/],
        ["", /empty/],
        ["null", /expected an array of 784 integers/],
        ['"abc"', /expected an array/],
        ["42", /expected an array/],
        ['{"pixels": []}', /expected an array of 784 integers 0..255 or \{"image": \[...\]\}/],
        ['{"image": "abc"}', /"image" is not an array/],
        [
          JSON.stringify([...new Array(783).fill(0), 256]),
          /image\[783\] is 256; pixels must be in 0..255/,
        ],
        [
          JSON.stringify([...new Array(783).fill(0), 1.5]),
          /image\[783\] is 1.5; pixels must be integers/,
        ],
        [JSON.stringify([...new Array(783).fill(0), -1]), /image\[783\] is -1/],
        [JSON.stringify([...new Array(783).fill(0), "1"]), /image\[783\] is string/],
        [JSON.stringify([...new Array(783).fill(0), [1]]), /image\[783\] is an array of 1/],
        [JSON.stringify({ image: new Array(784).fill(null) }), /image\[0\] is null/],
        ["[" + "[".repeat(20000) + "]".repeat(20000) + "]", /has 1 values|expected/],
        [new Uint8Array([0x5b, 0xff, 0xfe, 0x5d]), /not valid UTF-8/],
      ];
      for (const [body, message] of cases) {
        await expectError(post(body, "application/json"), 400, message);
      }
    });

    await t.step("404 and 405", async () => {
      await expectError(fetch(`${base}/`), 404, /no route \/; use POST \/classify or GET \/health/);
      await expectError(
        post(images[0], "application/octet-stream", "/predict"),
        404,
        /no route \/predict/,
      );
      const r = await expectError(
        fetch(`${base}/classify`),
        405,
        /use POST for \/classify, not GET/,
      );
      assert.equal(r.headers.get("allow"), "POST");
      await expectError(post("{}", "application/json", "/health"), 405, /use GET for \/health/);
    });

    await t.step("still healthy, and no internal errors were logged", async () => {
      assert.equal((await call(fetch(`${base}/health`))).status, 200);
      await expectOk(post(images[0], "application/octet-stream"), 0);
      assert.deepEqual(errors, []);
    });

    await t.step("a real bug gives 500 with a message, and the handler survives it", async () => {
      const seen: unknown[] = [];
      const broken = Object.create(classifier, {
        classify: {
          value: () => {
            throw new Error("boom");
          },
        },
      });
      const handler = createHandler(broken, { onError: (e) => seen.push(e) });
      const req = () =>
        new Request("http://x/classify", {
          method: "POST",
          headers: { "content-type": "application/octet-stream" },
          body: new Uint8Array(784),
        });
      const res = await handler(req());
      assert.equal(res.status, 500);
      assert.deepEqual(await res.json(), { error: "internal error: boom" });
      assert.equal(seen.length, 1);
      const again = await handler(new Request("http://x/health"));
      assert.equal(again.status, 200);
      await again.body?.cancel();
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("examples/serve.ts as a program: --model, $DESIRE_MODEL, errors", async (t) => {
  const { bytes } = await smallModel(0);
  const dir = await Deno.makeTempDir({ prefix: "desire_serve_" });
  const model = `${dir}/m.safetensors`;
  await Deno.writeFile(model, bytes);
  const run = (args: string[], env: Record<string, string> = {}) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        "--allow-read",
        "--allow-env",
        SERVE.pathname,
        ...args,
      ],
      env,
      stdout: "piped",
      stderr: "piped",
    });
  const text = (b: Uint8Array) => new TextDecoder().decode(b);

  try {
    for (
      const [how, args, env] of [
        ["--model", ["--model", model, "--port", "0"], {}],
        ["$DESIRE_MODEL", ["--port=0"], { DESIRE_MODEL: model }],
      ] as const
    ) {
      await t.step(`serves the model given by ${how} on an ephemeral port`, async () => {
        const child = run([...args], { ...env }).spawn();
        try {
          const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
          let out = "";
          while (!/http:\/\/\S+\//.test(out)) {
            const { done, value } = await lines.read();
            if (done) break;
            out += value;
          }
          lines.cancel();
          const url = /(http:\/\/\S+\/)/.exec(out)?.[1];
          assert.ok(url, `no address in: ${out}`);
          assert.match(out, /784-64-10, mnist/);
          const res = await fetch(`${url}classify`, {
            method: "POST",
            headers: { "content-type": "application/octet-stream" },
            body: new Uint8Array(784),
          });
          assert.equal(res.status, 200);
          assert.equal((await res.json()).counts.length, 10);
        } finally {
          child.kill("SIGTERM");
          await child.status;
          await child.stderr.cancel();
        }
      });
    }

    await t.step("a missing model or a bad flag: error and exit code 1", async () => {
      const missing = await run(["--model", `${dir}/none.safetensors`, "--port", "0"]).output();
      assert.equal(missing.code, 1);
      assert.match(
        text(missing.stderr),
        /error: Cannot load model .*none.safetensors: no such file/,
      );
      const bad = await run(["--port", "http"]).output();
      assert.equal(bad.code, 1);
      assert.match(text(bad.stderr), /--port http is not 0..65535/);
      const unknown = await run(["--verbose"]).output();
      assert.equal(unknown.code, 1);
      assert.match(text(unknown.stderr), /unknown argument --verbose/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
