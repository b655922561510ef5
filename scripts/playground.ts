// `npm run playground [-- --port N]`: builds the site and serves it on
// http://127.0.0.1:<port>/ with the cross-origin-isolation headers under which
// tfjs's wasm backend may use threads.
import { buildWeb } from './build-web.js';
import { serveFolder } from '../src/node/serve.js';

const i = process.argv.indexOf('--port');
const port = i > 0 ? Number(process.argv[i + 1]) : 8080;
const dir = await buildWeb();
const server = await serveFolder(dir, { isolated: true, port });
console.log(`advlab playground: ${server.url} (Ctrl-C to stop)`);
