// sd testnet: a local DHT (three nodes on 127.0.0.1) for tests and demos, until Ctrl-C.
import createTestnet from 'hyperdht/testnet.js';
import { UsageError, type Command } from '../command.js';

export const testnetCommand: Command = {
  name: 'testnet',
  usage: `Usage: sd testnet [--port N]

Runs a local DHT of three nodes on 127.0.0.1 and prints its bootstrap address
(127.0.0.1:PORT) at once; pass it to other commands with --bootstrap or SD_BOOTSTRAP.
Stays up until Ctrl-C (or SIGTERM). With --json: {"bootstrap":["127.0.0.1:PORT"]}.
  --port N   the first node's UDP port (default: any free port)`,
  options: { port: { type: 'string' } },
  async run(ctx) {
    const stopped = ctx.stopped;
    const portText = ctx.values.port as string | undefined;
    const port = portText === undefined ? 0 : Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port takes a UDP port number (0-65535)');
    const testnet = await createTestnet(3, { host: '127.0.0.1', port });
    const bootstrap = testnet.bootstrap.map((b) => `${b.host}:${b.port}`);
    ctx.out.result({ bootstrap }, () => bootstrap);
    ctx.out.info('local DHT running (Ctrl-C to stop)');
    await stopped;
    await testnet.destroy();
    return 0;
  },
};
