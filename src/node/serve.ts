/**
 * A static file server for advlab's pages (the playground, the browser tests
 * and benchmark), on loopback by default. With `isolated`, every response
 * carries the cross-origin-isolation headers (COOP same-origin, COEP
 * require-corp) under which a page may use SharedArrayBuffer, so tfjs's
 * threaded wasm build can start its workers.
 */
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { AddressInfo } from 'node:net';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** A running server: its base URL and how to stop it. */
export interface StaticServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Serves the files under `dir` (index.html for a folder); nothing outside it. */
export async function serveFolder(dir: string, options: { isolated?: boolean; port?: number; host?: string } = {}): Promise<StaticServer> {
  const root = resolve(dir) + sep;
  const server = createServer((req, res) => {
    let path: string;
    try {
      path = normalize(join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname)));
    } catch {
      res.writeHead(400).end();
      return;
    }
    const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'index.html') : path;
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' };
    if (options.isolated) Object.assign(headers, { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
    res.writeHead(200, headers).end(readFileSync(file));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, ok);
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://${host}:${port}/`, server, close: () => new Promise((r) => server.close(() => r())) };
}
