// sd pair / sd pair join: pair this device with another using 12 one-time words.
import { hostPairing, joinPairing, newPairingWords, parsePairingWords } from '../../replication/pairing.js';
import { parseBootstrap } from '../../replication/swarm.js';
import type { Peer } from '../../vdfs/peers.js';
import { UsageError, type Command, type CommandContext } from '../command.js';

const BOOTSTRAP_HELP = `  --bootstrap H:P,..   DHT bootstrap nodes (default: $SD_BOOTSTRAP, else the public DHT);
                       'sd testnet' runs a local one`;

function bootstrapOf(ctx: CommandContext) {
  return parseBootstrap((ctx.values.bootstrap as string | undefined) ?? process.env.SD_BOOTSTRAP);
}

function peerJson(p: Peer) {
  return { id: p.id, name: p.name, slug: p.slug, publicKey: p.publicKey };
}

/** One JSON document per line: `sd pair` reports twice (the words at once, the result at the end). */
function jsonLine(data: unknown): void {
  process.stdout.write(JSON.stringify(data) + '\n');
}

const join: Command = {
  name: 'join',
  summary: 'pair with the device showing these words',
  usage: `Usage: sd pair join WORD... [--bootstrap H:P,..]

Pairs with the device where 'sd pair' shows these 12 words (one argument each, or all
in one quoted argument). Gives up when no device is waiting for them within 20 s.
${BOOTSTRAP_HELP}`,
  options: { bootstrap: { type: 'string' } },
  async run(ctx) {
    if (ctx.positionals.length === 0) throw new UsageError("sd pair join takes the 12 words 'sd pair' shows on the other device");
    const secret = parsePairingWords(ctx.positionals);
    const bootstrap = bootstrapOf(ctx);
    const library = ctx.library();
    ctx.out.info('looking for the device showing these words ...');
    const peer = await joinPairing(library, secret, { bootstrap });
    ctx.out.result({ paired: peerJson(peer) }, () => [
      `Paired with '${peer.name}' (sd://${peer.slug}/)`,
      `The devices '${peer.name}' is paired with join too, once both sides' 'sd mount' run and meet (sd devices lists them, VIA '${peer.name}').`,
    ]);
  },
};

export const pairCommand: Command = {
  name: 'pair',
  usage: `Usage: sd pair [--bootstrap H:P,..] | sd pair join WORD...

Shows 12 words, valid for 5 minutes and for one device, and waits until the other device
runs 'sd pair join' with them. The words never travel: both devices prove they know them
and exchange their device keys; from then on only paired devices get through the swarm.
Works whether or not 'sd mount' runs on either device.
With --json the first line, printed at once, is {"words":[...],"expires":"<ISO time>"}
and the last line {"paired":{...}} names the device that joined.
${BOOTSTRAP_HELP}`,
  options: { bootstrap: { type: 'string' } },
  subcommands: [join],
  async run(ctx) {
    if (ctx.positionals.length > 0) throw new UsageError(`unknown subcommand '${ctx.positionals[0]}' of 'sd pair'; try 'sd pair --help'`);
    const stopped = ctx.stopped;
    const bootstrap = bootstrapOf(ctx);
    const library = ctx.library();
    const words = newPairingWords();
    const expires = new Date(words.expiresAt).toISOString();
    if (ctx.json) {
      jsonLine({ words: words.words, expires });
    } else {
      ctx.out.line(`Pairing words for '${library.device.name}' (valid until ${expires}, for one device):\n`);
      ctx.out.line(`  ${words.words.slice(0, 6).join(' ')}\n  ${words.words.slice(6).join(' ')}\n`);
      ctx.out.line(`On the other device run:  sd pair join ${words.words.join(' ')}`);
      ctx.out.info('waiting for the other device (Ctrl-C to cancel) ...');
    }
    const { peer, refused } = await hostPairing(library, words, { bootstrap }, stopped);
    if (ctx.json) jsonLine({ paired: peerJson(peer), refused });
    else ctx.out.line(`Paired with '${peer.name}' (sd://${peer.slug}/)${refused ? `; refused ${refused} connection${refused === 1 ? '' : 's'} that did not know the words` : ''}`);
  },
};
