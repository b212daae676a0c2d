// sd guardian status|at-risk|policy|trust|untrust: how many verified copies of every file
// exist across the paired devices, what the policies want, and what is at risk and why.
// Policies and trust are shared settings: every device of the library agrees on them.
import path from 'node:path';
import { config } from '../../config.js';
import { SdError } from '../../errors.js';
import { lastScrub, parseEvery, scrubSchedule, setScrubSchedule } from '../../guardian/schedule.js';
import { DEFAULT_STALE_DAYS, Guardian, parsePolicyTarget, type GuardianOptions } from '../../guardian/guardian.js';
import { planProtect, type ProtectPlan } from '../../guardian/protect.js';
import { measureLocalSpace } from '../../guardian/space.js';
import { RemoteChanges } from '../../vdfs/remote-changes.js';
import { DEFAULT_COPIES, MAX_COPIES, MIN_COPIES, validateCopies } from '../../guardian/settings.js';
import { ActionManager, planAction } from '../../vdfs/actions/action-manager.js';
import type { Action } from '../../vdfs/actions/types.js';
import { listDevices, type Device } from '../../vdfs/device.js';
import { listLocations } from '../../vdfs/locations.js';
import { resolvePath } from '../../vdfs/sdpath.js';
import { UsageError, type Command, type CommandContext } from '../command.js';
import { formatBytes, parseSize, table } from '../format.js';
import { requireCompleted, runJobHere } from './job-run.js';

function guardianOf(ctx: CommandContext): Guardian {
  const library = ctx.library();
  return new Guardian(library.db, library.device.id);
}

function staleOption(ctx: CommandContext): GuardianOptions {
  const text = ctx.values.stale as string | undefined;
  if (text === undefined) return {};
  const days = Number(text);
  if (!Number.isFinite(days) || days < 0) throw new UsageError(`--stale takes a number of days (got '${text}')`);
  return { staleDays: days };
}

function files(n: number): string {
  return `${n} file${n === 1 ? '' : 's'}`;
}

const STALE_HELP = `  --stale DAYS   copies on a device not seen for more than DAYS days do not count (default ${DEFAULT_STALE_DAYS})`;

const status: Command = {
  name: 'status',
  summary: 'files and bytes by copy count, per device and location, and what is at risk',
  usage: `Usage: sd guardian status [--stale DAYS]

Files (with a content id) and their bytes by how many devices hold a counting copy of their
content: a copy counts when its own full BLAKE3 is known, current and equal to the content's
(deep index, a verified copy, a scrub), its device is trusted and was seen within --stale
days. Then each device's locations (files, verified files, files at risk), and the totals at
risk by reason.
${STALE_HELP}`,
  options: { stale: { type: 'string' } },
  run(ctx) {
    const s = guardianOf(ctx).status(staleOption(ctx));
    ctx.out.result(s, () => [
      'Copies that count, per file:',
      ...table(s.byCopies.map((b) => [`  ${b.copies === 3 ? '3 or more' : String(b.copies)}`, files(b.files), formatBytes(b.bytes)])),
      ...(s.unidentified ? [`  not identified (no content id): ${files(s.unidentified)}`] : []),
      'Locations:',
      ...table(s.locations.map((l) => [`  sd://${l.device}/${l.location}`, files(l.files), formatBytes(l.bytes), `${l.verified} verified`, `${l.atRiskFiles} at risk`])),
      `At risk: ${files(s.atRisk.files)} (${s.atRisk.contents} contents, ${formatBytes(s.atRisk.bytes)})${Object.keys(s.atRisk.byReason).length ? ': ' + Object.entries(s.atRisk.byReason).map(([k, n]) => `${n} ${k}`).join(', ') : ''}`,
      `Policies: ${s.policies.length ? s.policies.map((p) => `${p.target} ${p.copies}`).join(', ') : `none (every file wants ${DEFAULT_COPIES} copies)`}`,
      ...(s.untrusted.length ? [`Untrusted (copies do not count): ${s.untrusted.join(', ')}`] : []),
      ...(s.staleDevices.length ? [`Not seen for more than ${s.staleDays} days (copies do not count): ${s.staleDevices.join(', ')}`] : []),
    ]);
  },
};

const atRisk: Command = {
  name: 'at-risk',
  summary: 'content with fewer counting copies than its policy wants, most at risk first',
  usage: `Usage: sd guardian at-risk [--stale DAYS] [--limit N]

Lists content whose counting copies fall short of what its files' policy wants, most at
risk first (fewest copies, then the largest shortfall, then size), with the reason: one
copy; copies only on untrusted devices; copies only on devices not seen for more than
--stale days; copies not verified; too few copies. Each with the files that hold it.
${STALE_HELP}
  --limit N      list at most N contents (default 100)`,
  options: { stale: { type: 'string' }, limit: { type: 'string' } },
  run(ctx) {
    const limitText = ctx.values.limit as string | undefined;
    const limit = limitText === undefined ? 100 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit takes a whole number of at least 1 (got '${limitText}')`);
    const { items, total } = guardianOf(ctx).atRisk({ ...staleOption(ctx), limit });
    ctx.out.result({ total, items }, () =>
      items.length === 0
        ? ['Nothing is at risk: every file has the copies its policy wants.']
        : [
            ...items.flatMap((i) => [`${i.contentId}  ${formatBytes(i.size)}  ${i.counting}/${i.wanted} copies: ${i.risk.reason}`, ...i.paths.map((p) => `  ${p}`), ...(i.files > i.paths.length ? [`  … and ${i.files - i.paths.length} more files`] : [])]),
            ...(total > items.length ? [`… and ${total - items.length} more at risk (--limit)`] : []),
          ],
    );
  },
};

function policyTarget(ctx: CommandContext, text: string | undefined) {
  const db = ctx.library().db;
  return parsePolicyTarget(text, (sdPath) => {
    const r = resolvePath(db, sdPath);
    if (r.kind !== 'entry') throw new SdError('USAGE', `${sdPath} is not a location or folder; a policy is set on a location, a folder, a tag (tag:NAME) or the library (no target)`);
    return r;
  });
}

const policySet: Command = {
  name: 'set',
  summary: 'how many copies a location, folder, tag or the whole library wants',
  usage: `Usage: sd guardian policy set --copies N [TARGET] [--store SDPATH]

TARGET is nothing (the library's default), a location or folder (sd://device/location/path,
or a local path inside a location), or tag:NAME. A file follows the most specific policy:
its tags' (the most demanding), else the deepest folder's above it, else the library's
(default ${DEFAULT_COPIES}). N is ${MIN_COPIES} to ${MAX_COPIES}. Shared with every paired device; the newest setting wins.
  --store SDPATH  where 'sd guardian protect' puts the copies this policy wants: a location
                  or folder of a device (sd://nas/backup); without it, wherever there is the
                  most free space`,
  options: { copies: { type: 'string' }, store: { type: 'string' } },
  run(ctx) {
    const [target, ...extra] = ctx.positionals;
    if (extra.length > 0) throw new UsageError('sd guardian policy set takes one TARGET at most');
    const copiesText = ctx.values.copies as string | undefined;
    if (copiesText === undefined) throw new UsageError('sd guardian policy set needs --copies N');
    const copies = validateCopies(Number(copiesText));
    const g = guardianOf(ctx);
    const t = policyTarget(ctx, target);
    const storeText = ctx.values.store as string | undefined;
    const store = storeText === undefined ? undefined : policyTarget(ctx, storeText);
    if (store && store.kind !== 'path') throw new UsageError(`--store takes a location or folder (sd://device/location/path), not '${storeText}'`);
    g.settings.setPolicy(t, copies, store);
    const name = g.describeTarget(t);
    const where = store ? g.describeTarget(store) : undefined;
    ctx.out.result({ target: name, copies, ...(where ? { store: where } : {}) }, () => [`Policy: ${name} wants ${copies} cop${copies === 1 ? 'y' : 'ies'}${where ? `, new ones in ${where}` : ''}`]);
  },
};

const policyLs: Command = {
  name: 'ls',
  summary: 'list the policies',
  usage: 'Usage: sd guardian policy ls\n\nEvery policy with the copies it wants (shared by every paired device).',
  run(ctx) {
    const g = guardianOf(ctx);
    const rows = g.settings.policies().map((p) => ({ target: g.describeTarget(p.target), copies: p.copies, ...(p.store ? { store: g.describeTarget(p.store) } : {}) }));
    ctx.out.result(rows, () => (rows.length === 0 ? [`No policies: every file wants ${DEFAULT_COPIES} copies.`] : table(rows.map((r) => [r.target, String(r.copies), r.store ? `store ${r.store}` : '']))));
  },
};

const policyRm: Command = {
  name: 'rm',
  summary: 'remove a policy',
  usage: 'Usage: sd guardian policy rm [TARGET]\n\nRemoves the policy of TARGET (nothing: the library default), on every paired device.',
  run(ctx) {
    const [target, ...extra] = ctx.positionals;
    if (extra.length > 0) throw new UsageError('sd guardian policy rm takes one TARGET at most');
    const g = guardianOf(ctx);
    const t = policyTarget(ctx, target);
    if (!g.settings.removePolicy(t)) throw new SdError('NOT_FOUND', `there is no policy for ${g.describeTarget(t)}; 'sd guardian policy ls' lists them`);
    ctx.out.result({ target: g.describeTarget(t), removed: true }, () => [`Removed the policy of ${g.describeTarget(t)}`]);
  },
};

const policy: Command = {
  name: 'policy',
  summary: 'set, list or remove copy policies',
  usage: 'Usage: sd guardian policy set --copies N [TARGET] | sd guardian policy ls | sd guardian policy rm [TARGET]',
  subcommands: [policySet, policyLs, policyRm],
};

/** A device of the library by its slug, name or id. */
function deviceNamed(ctx: CommandContext, ref: string): Device {
  const matches = listDevices(ctx.library().db).filter((d) => d.slug === ref || d.name === ref || d.id === ref);
  if (matches.length === 0) throw new SdError('NOT_FOUND', `no device named '${ref}'; 'sd devices' lists them`);
  if (matches.length > 1) throw new SdError('USAGE', `'${ref}' names more than one device; use its slug from 'sd devices'`);
  return matches[0]!;
}

function trustCommand(name: 'trust' | 'untrust'): Command {
  const trusted = name === 'trust';
  return {
    name,
    summary: trusted ? "count a device's copies again" : "stop counting a device's copies (a phone's copies protect nothing)",
    usage: `Usage: sd guardian ${name} DEVICE\n\n${trusted ? 'Counts the copies on DEVICE again.' : 'Copies on DEVICE no longer count toward any policy (they are still listed).'} DEVICE is a device name or slug ('sd devices'), this one's included. Shared with every paired device.`,
    run(ctx) {
      const [ref, ...extra] = ctx.positionals;
      if (ref === undefined || extra.length > 0) throw new UsageError(`sd guardian ${name} takes one DEVICE`);
      const device = deviceNamed(ctx, ref);
      guardianOf(ctx).settings.setTrust(device.id, trusted);
      ctx.out.result({ device: device.slug, trusted }, () => [trusted ? `${device.slug}: its copies count` : `${device.slug}: its copies no longer count`]);
    },
  };
}

const scrub: Command = {
  name: 'scrub',
  summary: 'read files whole and find bit rot (a journaled, resumable job)',
  usage: `Usage: sd guardian scrub [LOCATION...] [--rate MB/s] [--preview]

Reads every identified file of this device's locations (all, or those named) and computes
its full BLAKE3. A file unchanged (size and mtime) since its last check whose bytes now
hash differently is bit rot: it is reported, its copy stops counting, peers learn it, and
it is not served to them until repaired. Any other file gets a fresh check (its copy then
counts as verified). A job like sd cp: journaled, progress on a terminal, Ctrl-C pauses,
'sd jobs resume ID' continues after a kill, audited.
  --rate MB/s   read at most this many megabytes (10^6 bytes) per second
  --preview     say what would be read, and how long it would take; read nothing`,
  options: { rate: { type: 'string' }, preview: { type: 'boolean' } },
  async run(ctx) {
    const rateText = ctx.values.rate as string | undefined;
    const rate = rateText === undefined ? 0 : Number(rateText) * 1e6;
    if (!Number.isFinite(rate) || rate < 0 || (rateText !== undefined && rate === 0)) throw new UsageError(`--rate takes megabytes per second, more than 0 (got '${rateText}')`);
    const action: Action = { kind: 'scrub', input: { locations: ctx.positionals, rate } };
    const actions = new ActionManager(ctx.library(), { actor: 'cli' });
    if (ctx.values.preview) {
      const preview = actions.preview(action);
      if (!preview.ok) throw new SdError(preview.problems[0]!.code, `scrub not started: ${preview.problems[0]!.message}`);
      ctx.out.result({ preview }, () => [`Preview: scrub ${preview.files} files (${formatBytes(preview.bytes)}) in ${preview.sources.map((s) => s.sdpath).join(', ')}; about ${preview.estimatedSeconds} s; nothing was read`]);
      return 0;
    }
    const id = actions.commit(action, 'cli');
    const outcome = await runJobHere(ctx, actions.jobs, id);
    requireCompleted(outcome);
    const p = outcome.progress;
    const corrupt = guardianOf(ctx).corruptFiles();
    ctx.out.result({ job: id, ...outcome, corruptFiles: corrupt }, () => [
      `Scrubbed ${files(p.filesDone)} (${formatBytes(p.bytesDone)}) in ${outcome.seconds} s — job ${id}: ${p.verified} verified, ${p.corrupt ?? 0} corrupt${p.skipped ? `, ${p.skipped} changed since indexed (skipped)` : ''}`,
      ...(corrupt.length ? ['Corrupt (bytes changed, size and mtime did not):', ...corrupt.map((c) => `  ${c}`)] : []),
    ]);
    return p.corrupt ? 1 : 0;
  },
};

const repair: Command = {
  name: 'repair',
  summary: 'restore corrupt files from a verified copy (previewed, journaled)',
  usage: `Usage: sd guardian repair [SDPATH...] [--preview]

Replaces each named file of this device that a scrub found corrupt (no path: every one)
with a verified copy of the bytes it should have: a copy whose own check is current and
equal to the hash the file had. The bytes are checked against that hash before they are
renamed into place, keeping the file's mode and times. A file changed since it was found
corrupt is an edit and is never repaired. Sources: a verified copy on this device (another
location, a duplicate) is copied here at once; otherwise the job is queued and the running
'sd mount' fetches the bytes from a paired device holding them. A job like sd cp.
  --preview   say what would be restored from where; change nothing`,
  options: { preview: { type: 'boolean' } },
  async run(ctx) {
    const action: Action = { kind: 'repair', input: { targets: ctx.positionals } };
    const actions = new ActionManager(ctx.library(), { actor: 'cli' });
    const preview = actions.preview(action);
    if (ctx.values.preview) {
      const plan = planAction(ctx.library(), action);
      ctx.out.result({ preview }, () => [
        `Preview: repair ${files(preview.files)} (${formatBytes(preview.bytes)})`,
        ...plan.items.map((i) => `  ${i.dst} from ${i.src ?? '(no verified copy)'}`),
        ...preview.problems.map((p) => `  problem: ${p.message}`),
        preview.ok ? '  nothing was changed; run again without --preview to do it' : '  nothing was changed; this would not start as it is',
      ]);
      return 0;
    }
    if (preview.files === 0 && preview.ok) {
      ctx.out.result({ repaired: 0 }, () => ['Nothing to repair: no file of this device is corrupt.']);
      return 0;
    }
    const id = actions.commit(action, 'cli');
    // Bytes only a paired device has are fetched by the running mount, which runs the job.
    const plan = planAction(ctx.library(), action);
    if (plan.items.some((i) => i.src === null)) {
      ctx.out.result({ job: id, queued: true }, () => [`Queued as job ${id}: the running 'sd mount' fetches the bytes from a paired device and repairs ${files(plan.items.length)} ('sd jobs show ${id}' follows it)`]);
      return 0;
    }
    const outcome = await runJobHere(ctx, actions.jobs, id);
    requireCompleted(outcome);
    const p = outcome.progress;
    ctx.out.result({ job: id, ...outcome }, () => [`Repaired ${files(p.verified)} (${formatBytes(p.copiedBytes)}) in ${outcome.seconds} s — job ${id}, each checked by full BLAKE3${p.skipped ? `; ${p.skipped} changed since (an edit) or fine already: left alone` : ''}`]);
    return 0;
  },
};

function describeProtect(plan: ProtectPlan, done: string): string[] {
  const shown = plan.copies.slice(0, 20);
  return [
    `${plan.atRisk} content${plan.atRisk === 1 ? '' : 's'} at risk; ${plan.copies.length} cop${plan.copies.length === 1 ? 'y' : 'ies'} planned (${formatBytes(plan.bytes)})`,
    ...table(plan.targets.map((t) => [`  to sd://${t.device}/${t.location}`, files(t.files), formatBytes(t.bytes), t.free === null ? 'free space not reported yet' : `${formatBytes(t.free)} free`])),
    ...shown.map((c) => `  ${c.from} → ${c.to.sdPath}`),
    ...(plan.copies.length > shown.length ? [`  … and ${plan.copies.length - shown.length} more`] : []),
    ...(plan.deferred.contents ? [`  left for later (--max-bytes): ${plan.deferred.contents} contents, ${formatBytes(plan.deferred.bytes)}`] : []),
    ...plan.problems.slice(0, 20).map((p) => `  not planned: ${p}`),
    ...(plan.problems.length > 20 ? [`  … and ${plan.problems.length - 20} more not planned`] : []),
    done,
  ];
}

const protect: Command = {
  name: 'protect',
  summary: 'copy at-risk content onto paired devices until each file has the copies its policy wants',
  usage: `Usage: sd guardian protect [--to DEVICE[:LOCATION]] [--max-bytes SIZE] [--stale DAYS] [--preview]

Plans one copy for every copy an at-risk content lacks (most at risk first), each onto a
trusted device (this one or a paired one) seen within --stale days that holds no copy of it yet: the location
--to names, else the one the file's policy stores copies in ('policy set --store'), else
the location with the most free space its device reported. A copy goes under
<location>/<device>/<location>/<path>, so the tree it came from stays readable. The copies
are jobs ('sd jobs'): the running 'sd mount' delivers them, at once to online devices and
to the others when they come back (and fetches the copies meant for this device). The target fetches the bytes from any device holding
them and checks their full BLAKE3 before they land, so the new copy counts at once.
Content with unverified copies is not copied again: 'sd guardian scrub' verifies them.
  --to DEVICE[:LOCATION]  only onto this device (and location)
  --max-bytes SIZE        plan at most SIZE of copies (50G, 500MiB); the rest waits
${STALE_HELP}
  --preview               say what would go where (bytes, free space); change nothing`,
  options: { to: { type: 'string' }, 'max-bytes': { type: 'string' }, stale: { type: 'string' }, preview: { type: 'boolean' } },
  run(ctx) {
    if (ctx.positionals.length > 0) throw new UsageError('sd guardian protect takes options only (--to DEVICE[:LOCATION])');
    const library = ctx.library();
    const toText = ctx.values.to as string | undefined;
    let to: { deviceId: string; location?: string } | undefined;
    if (toText !== undefined) {
      const [ref, location, ...rest] = toText.split(':');
      if (!ref || rest.length > 0 || location === '') throw new UsageError(`--to takes DEVICE or DEVICE:LOCATION (got '${toText}')`);
      to = { deviceId: deviceNamed(ctx, ref).id, ...(location ? { location } : {}) };
    }
    const maxText = ctx.values['max-bytes'] as string | undefined;
    const maxBytes = maxText === undefined ? undefined : parseSize(maxText);
    if (maxBytes === undefined && maxText !== undefined) throw new UsageError(`--max-bytes takes a size such as 50G or 500MiB (got '${maxText}')`);
    measureLocalSpace(library.db, library.device.id);
    const plan = planProtect(library.db, library.device.id, { ...staleOption(ctx), to, maxBytes });
    if (ctx.values.preview || plan.copies.length === 0) {
      const done = plan.copies.length === 0 ? (plan.atRisk === 0 ? 'Nothing is at risk: every file has the copies its policy wants.' : 'Nothing to copy.') : 'Preview: nothing was changed; run again without --preview to queue these copies';
      ctx.out.result({ preview: plan }, () => describeProtect(plan, done));
      return 0;
    }
    // Copies onto paired devices are their jobs (one each, delivered in order); onto this device, one fetch job.
    const changes = new RemoteChanges(library);
    const toPeers = plan.copies.filter((c) => c.to.deviceId !== library.device.id);
    const jobs = toPeers.map((c) => changes.protect({ id: c.to.deviceId, slug: c.to.device }, c.to.location, c.to.path, { contentId: c.contentId, fullHash: c.fullHash, size: c.size, mode: c.mode, mtimeMs: c.mtimeMs }, 'cli'));
    const here = plan.copies.filter((c) => c.to.deviceId === library.device.id);
    if (here.length > 0) {
      const roots = new Map(listLocations(library.db, library.device.id).map((l) => [l.name, l.rootPath]));
      const copies = here.map((c) => ({ contentId: c.contentId, target: path.join(roots.get(c.to.location)!, ...c.to.path.split('/')) }));
      jobs.push(new ActionManager(library, { actor: 'cli' }).commit({ kind: 'fetch', input: { copies } }, 'cli'));
    }
    ctx.out.result({ jobs, plan }, () => describeProtect(plan, `Queued ${jobs.length} cop${jobs.length === 1 ? 'y' : 'ies'} as jobs ${jobs[0]}–${jobs[jobs.length - 1]}: the running 'sd mount' delivers them (devices offline now get them when they are back); 'sd jobs' follows them`));
    return 0;
  },
};

function every(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${Math.round(ms / 60_000)}m`;
}

const schedule: Command = {
  name: 'schedule',
  summary: "how often the running mount scrubs this device's locations",
  usage: `Usage: sd guardian schedule [--every DURATION] [--rate MB/s] | sd guardian schedule --off

With --every (90m, 24h, 7d; a bare number is hours), a running 'sd mount' scrubs all of this
device's locations that often, reading at most --rate megabytes per second (default
${config.scrubDefaultRate / 1e6}: low, so the disk stays usable). The first scrub starts within a minute of the
mount when none ran within the interval. Without options: the schedule now. This device's
own setting: each device scrubs its own disks.
  --every DURATION  how often
  --rate MB/s       read speed of the scheduled scrub
  --off             no scheduled scrub`,
  options: { every: { type: 'string' }, rate: { type: 'string' }, off: { type: 'boolean' } },
  run(ctx) {
    const db = ctx.library().db;
    const everyText = ctx.values.every as string | undefined;
    const rateText = ctx.values.rate as string | undefined;
    if (ctx.positionals.length > 0) throw new UsageError('sd guardian schedule takes options only');
    if (ctx.values.off) {
      if (everyText !== undefined || rateText !== undefined) throw new UsageError('--off takes no --every or --rate');
      setScrubSchedule(db, undefined);
    } else if (everyText !== undefined || rateText !== undefined) {
      const everyMs = everyText === undefined ? scrubSchedule(db)?.everyMs : parseEvery(everyText);
      if (everyMs === undefined) throw new UsageError(everyText === undefined ? 'a new schedule needs --every DURATION (90m, 24h, 7d)' : `--every takes a duration such as 90m, 24h or 7d (got '${everyText}')`);
      const rate = rateText === undefined ? (scrubSchedule(db)?.rate ?? 0) : Number(rateText) * 1e6;
      if (!Number.isFinite(rate) || (rate <= 0 && rateText !== undefined)) throw new UsageError(`--rate takes megabytes per second, more than 0 (got '${rateText}')`);
      setScrubSchedule(db, { everyMs, rate });
    }
    const now = scrubSchedule(db);
    const last = lastScrub(db);
    ctx.out.result({ schedule: now ?? null, lastScrubAt: last.at === null ? null : new Date(last.at).toISOString() }, () => [
      now ? `Scrub every ${every(now.everyMs)} at ${formatBytes(now.rate)}/s while sd mount runs` : 'No scheduled scrub (sd guardian schedule --every 7d sets one)',
      `Last scrub: ${last.at === null ? 'never' : new Date(last.at).toISOString()}${last.active ? ' (running or waiting now)' : ''}`,
    ]);
  },
};

export const guardianCommand: Command = {
  name: 'guardian',
  usage: `Usage: sd guardian status | at-risk | policy set|ls|rm | scrub [LOCATION...] | repair [SDPATH...] | protect | schedule | trust DEVICE | untrust DEVICE

The Data Guardian: how many verified copies of each file exist on the paired devices, the
copies each file wants (policies), and what is at risk.`,
  subcommands: [status, atRisk, policy, scrub, repair, protect, schedule, trustCommand('trust'), trustCommand('untrust')],
};
