// The baseline: a bare pass-through proxy with no parsing. It forwards the
// request body to 127.0.0.1:<x-upstream-port>/<same path> over a keep-alive
// client and streams the answer back untouched. Two clients, so the benchmark
// can use whichever is faster on this machine:
//   node bench/passthrough.js --client http|undici
// Prints `listening PORT` on stdout when ready; SIGTERM stops it.
import { Agent as HttpAgent, createServer, request as httpRequest } from 'node:http';
import { Agent as UndiciAgent } from 'undici';

const client = process.argv.includes('--client') ? process.argv[process.argv.indexOf('--client') + 1] : 'http';

function fail(res, err) {
  if (!res.headersSent) {
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: String(err?.message ?? err) } }));
  } else res.destroy();
}

function forwardedHeaders(req) {
  const headers = { 'content-type': 'application/json' };
  if (req.headers['content-length'] !== undefined) headers['content-length'] = req.headers['content-length'];
  if (req.headers.authorization !== undefined) headers.authorization = req.headers.authorization;
  return headers;
}

function viaNodeHttp() {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });
  return (req, res) => {
    const upstream = httpRequest(
      {
        host: '127.0.0.1',
        port: Number(req.headers['x-upstream-port']),
        method: req.method,
        path: req.url,
        headers: forwardedHeaders(req),
        agent,
      },
      (up) => {
        const headers = { 'content-type': up.headers['content-type'] ?? 'application/json' };
        if (up.headers['content-length'] !== undefined) headers['content-length'] = up.headers['content-length'];
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (err) => fail(res, err));
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };
}

function viaUndici() {
  const agent = new UndiciAgent({ keepAliveTimeout: 10_000, headersTimeout: 0, bodyTimeout: 0 });
  return (req, res) => {
    const controller = new globalThis.AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    agent
      .stream(
        {
          origin: `http://127.0.0.1:${req.headers['x-upstream-port']}`,
          path: req.url,
          method: req.method,
          headers: forwardedHeaders(req),
          body: req,
          signal: controller.signal,
        },
        ({ statusCode, headers }) => {
          const out = { 'content-type': headers['content-type'] ?? 'application/json' };
          if (headers['content-length'] !== undefined) out['content-length'] = headers['content-length'];
          res.writeHead(statusCode, out);
          return res;
        },
      )
      .catch((err) => fail(res, err));
  };
}

const server = createServer(client === 'undici' ? viaUndici() : viaNodeHttp());
server.keepAliveTimeout = 5_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
