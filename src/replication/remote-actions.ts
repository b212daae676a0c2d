// Changes made in another device's tree travel as requests on the action channel of the
// device connection. The asking side (Delivery) sends its queued remote jobs to each online
// device in order, one at a time, and settles them with the answer; the device (Applier)
// runs each request as an action of its own (audited, journaled), fetching a new file's
// bytes from the asker over the block channel and checking their BLAKE3 first. A request
// sent again after a lost connection is answered from a record, never run twice. Another
// process holding the library past the busy timeout holds the bookkeeping up, never loses it.
import fs from 'node:fs';
import path from 'node:path';
import Protomux, { type Channel, type Message } from 'protomux';
import { config } from '../config.js';
import { SdError } from '../errors.js';
import { log } from '../log.js';
import type { Action } from '../vdfs/actions/types.js';
import { AuditLog } from '../vdfs/audit.js';
import { CopyChecks } from '../vdfs/content/copy-checks.js';
import { heldByAnotherProcess, whenLibraryFree } from '../vdfs/db/when-free.js';
import { peersHolding } from '../vdfs/actions/repair.js';
import { contentHashOfFile, fullHashOfFile } from '../vdfs/content/identity.js';
import type { JobOutcome } from '../vdfs/jobs/job-manager.js';
import { JobStore, emptyProgress, type Job } from '../vdfs/jobs/job-store.js';
import { ownerToken } from '../vdfs/jobs/owner.js';
import { fullHashAsync } from '../vdfs/jobs/copy-file.js';
import { jobOptions } from '../vdfs/jobs/options.js';
import type { Library } from '../vdfs/library.js';
import { exists, statOrUndefined } from '../vdfs/fs-stat.js';
import { getLocation, type Location } from '../vdfs/locations.js';
import type { FsOp } from '../vdfs/actions/fs-op.js';
import type { Peer } from '../vdfs/peers.js';
import { RemoteChanges, remoteOf, type FileAttrs, type RemoteJobInfo } from '../vdfs/remote-changes.js';
import { ACTION_PROTOCOL, actionReply, actionRequest, clipMessage, type ActionReply, type ActionRequest } from './action-messages.js';
import type { BlockService } from './blocks.js';
import { safeSegments } from './block-server.js';

/** Runs an action on this device to the end, or one namespace op at once (the node's ActionManager). */
export interface ActionRunner {
  execute(action: Action, actor: string): Promise<JobOutcome>;
  applyFsOp(location: Location, op: FsOp, actor: string): unknown;
}

/** One action channel on one device connection, used both ways. */
export class ActionChannel {
  private readonly channel: Channel;
  private readonly requestMessage: Message<ActionRequest>;
  private readonly replyMessage: Message<ActionReply>;
  private readonly waiting = new Map<number, { resolve(r: ActionReply): void; reject(e: Error): void }>();
  closed = false;
  private readonly closeListeners: Array<() => void> = [];

  constructor(mux: Protomux, readonly peer: Peer, serve: (request: ActionRequest, channel: ActionChannel) => Promise<ActionReply>) {
    const channel = mux.createChannel({ protocol: ACTION_PROTOCOL, onclose: () => this.onClosed() });
    if (!channel) throw new SdError('INVALID', `an action channel to ${peer.slug} is open already`);
    this.channel = channel;
    this.requestMessage = channel.addMessage({
      encoding: actionRequest,
      onmessage: (request) => {
        serve(request, this).then(
          (reply) => !this.closed && this.replyMessage.send(reply),
          (err: unknown) => log.warn({ op: 'actions', device: peer.slug, err: String(err) }, 'request not answered'),
        );
      },
    });
    this.replyMessage = channel.addMessage({
      encoding: actionReply,
      onmessage: (reply) => {
        const w = this.waiting.get(reply.id);
        this.waiting.delete(reply.id);
        w?.resolve(reply);
      },
    });
    channel.open();
  }

  /** Sends a request and waits for its answer; rejects when the connection goes first. */
  request(request: ActionRequest): Promise<ActionReply> {
    if (this.closed) return Promise.reject(new SdError('IO', `device ${this.peer.slug} went offline`));
    return new Promise((resolve, reject) => {
      this.waiting.set(request.id, { resolve, reject });
      this.requestMessage.send(request);
    });
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  close(): void {
    this.channel.close();
  }

  private onClosed(): void {
    this.closed = true;
    for (const w of this.waiting.values()) w.reject(new SdError('IO', `device ${this.peer.slug} went offline`));
    this.waiting.clear();
    for (const l of this.closeListeners) l();
  }
}

/** Runs paired devices' requests here, once each. */
export class Applier {
  private readonly inFlight = new Map<string, Promise<ActionReply>>();
  private readonly recall;
  private readonly record;
  readonly incomingDir: string;

  constructor(
    private readonly library: Library,
    private readonly runner: ActionRunner,
    private readonly blocks: BlockService,
    /** This device's index log length once its queued changes are in the log. */
    private readonly logLength: () => Promise<number>,
  ) {
    this.recall = library.db.prepare('SELECT result FROM peer_requests WHERE device_id = ? AND request_id = ?').pluck();
    this.record = library.db.prepare('INSERT OR REPLACE INTO peer_requests (device_id, request_id, result, created_at) VALUES (?, ?, ?, ?)');
    this.incomingDir = path.join(library.dir, 'incoming');
  }

  serve(request: ActionRequest, channel: ActionChannel): Promise<ActionReply> {
    const peer = channel.peer;
    const key = `${peer.id}:${request.id}`;
    const known = this.recall.get(peer.id, request.id) as string | undefined;
    if (known) return Promise.resolve({ ...(JSON.parse(known) as ActionReply), id: request.id });
    const running = this.inFlight.get(key);
    if (running) return running;
    const done = this.run(request, channel).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, done);
    return done;
  }

  private async run(request: ActionRequest, channel: ActionChannel): Promise<ActionReply> {
    const peer = channel.peer;
    const reply = (ok: boolean, message: string, logLength: number, final: boolean): ActionReply => ({ id: request.id, ok, message: clipMessage(message), logLength, final });
    let result: ActionReply;
    try {
      const message = await this.apply(request, channel);
      result = reply(true, message, await this.logLength(), true);
    } catch (err) {
      // Not final, asked again: the connection went, a file was busy, or another process held
      // this library past the busy timeout (once refused for good: the asker's change was lost).
      const busyLibrary = heldByAnotherProcess(err);
      const final = !busyLibrary && (!(err instanceof SdError) || !['IO', 'BUSY'].includes(err.code));
      const message = busyLibrary ? `the library of ${this.library.device.name} is busy with another writer; asked again shortly` : err instanceof Error ? err.message : String(err);
      result = reply(false, message, await this.logLength().catch(() => 0), final);
      log.warn({ op: 'actions', device: peer.slug, request: request.id, err: result.message, final }, 'request from a device not applied');
    }
    // Final answers are kept: the same request sent again gets them without running twice.
    if (result.final) {
      const keep = () => void this.record.run(peer.id, request.id, JSON.stringify(result), Date.now());
      await whenLibraryFree({ op: 'actions', device: peer.slug, request: request.id, record: 'answer' }, keep, () => !this.library.db.open);
    }
    return result;
  }

  /** Runs the request as an action of this device; returns what was done. */
  private async apply(request: ActionRequest, channel: ActionChannel): Promise<string> {
    const op = request.op;
    const location = getLocation(this.library.db, this.library.device.id, op.location);
    if (!location) throw new SdError('NOT_FOUND', `no location '${op.location}' on device ${this.library.device.name}`);
    const names = safeSegments(op.path);
    if (names.length === 0) throw new SdError('PERMISSION', `the root of location '${op.location}' is not changed by other devices`);
    const real = path.join(location.rootPath, ...names);
    const actor = `device:${channel.peer.slug}`;
    const run = async (action: Action): Promise<string> => {
      const outcome = await this.runner.execute(action, actor);
      if (outcome.status !== 'completed') throw new SdError(outcome.status === 'failed' ? 'INVALID' : 'IO', `${action.kind} ${outcome.status}: ${outcome.error ?? ''}`);
      return `${action.kind} done`;
    };
    switch (op.op) {
      case 'mkdir':
        if (statOrUndefined(real)?.isDirectory()) return 'the folder exists already';
        return run({ kind: 'mkdir', input: { target: real, mode: op.mode } });
      case 'delete':
        if (!exists(real)) return 'gone already';
        return run({ kind: 'delete', input: { targets: [real] } });
      case 'move': {
        const to = safeSegments(op.to);
        if (to.length === 0) throw new SdError('PERMISSION', `the root of location '${op.location}' is not replaced by other devices`);
        const target = path.join(location.rootPath, ...to);
        if (!exists(real) && exists(target)) return 'moved already';
        return run({ kind: 'move', input: { sources: [real], target, onConflict: 'overwrite' } });
      }
      case 'copy':
        return this.copyIn(request, { location, rel: names.join('/'), real, actor }, channel, run, op.overwrite);
      case 'attrs':
        this.setAttrs(location, names.join('/'), op, actor);
        return 'attributes set';
      case 'protect': {
        // Content this device holds a verified copy of already is not copied again.
        if (new CopyChecks(this.library.db).verifiedCopies(this.library.device.id, op.fullHash).length > 0) return 'a verified copy is here already';
        const parent = path.dirname(real);
        if (!statOrUndefined(parent)?.isDirectory()) await run({ kind: 'mkdir', input: { target: parent, parents: true } });
        return this.copyIn({ ...request, size: op.size, contentId: op.contentId, fullHash: op.fullHash, mode: op.mode, mtimeMs: op.mtimeMs }, { location, rel: names.join('/'), real, actor }, channel, run, false);
      }
    }
  }

  private setAttrs(location: Location, rel: string, attrs: FileAttrs, actor: string): void {
    if (attrs.mode !== undefined) this.runner.applyFsOp(location, { op: 'chmod', path: rel, mode: attrs.mode }, actor);
    if (attrs.mtimeMs !== undefined) this.runner.applyFsOp(location, { op: 'utimens', path: rel, atimeMs: attrs.atimeMs ?? attrs.mtimeMs, mtimeMs: attrs.mtimeMs }, actor);
  }

  /**
   * Fetches the bytes (from the asker first, then any other online device holding them),
   * checks their BLAKE3, then moves them into place as an action (replacing what is there
   * when `overwrite`, else keeping both).
   */
  private async copyIn(request: ActionRequest, at: { location: Location; rel: string; real: string; actor: string }, channel: ActionChannel, run: (a: Action) => Promise<string>, overwrite: boolean): Promise<string> {
    const { real } = at;
    const size = request.size ?? 0;
    // The same bytes are there already (touch or cp -p over a file, a second rsync): a copy
    // would be skipped as a duplicate, but the times and mode the writer set still count.
    if (await sameBytes(real, size, request.fullHash)) {
      this.setAttrs(at.location, at.rel, { mode: request.mode, mtimeMs: request.mtimeMs }, at.actor);
      return 'the same bytes are there already; times and mode set';
    }
    fs.mkdirSync(this.incomingDir, { recursive: true });
    const part = path.join(this.incomingDir, `${channel.peer.id}-${request.id}`);
    if (size === 0) {
      fs.writeFileSync(part, '');
    } else {
      if (!request.contentId || !request.fullHash) throw new SdError('INVALID', 'a copy of a non-empty file needs its content id and full hash');
      const contentId = request.contentId;
      const holders = [channel.peer.id, ...peersHolding(this.library, contentId).filter((id) => id !== channel.peer.id)];
      const file = this.blocks.openContent(contentId, size, holders);
      const got = await file.fetchWhole(part);
      if (got.fullHash !== request.fullHash) {
        fs.rmSync(part, { force: true });
        throw new SdError('IO', `the bytes of ${request.op.path} changed while they were sent (BLAKE3 ${got.fullHash.slice(0, 16)}…, expected ${request.fullHash.slice(0, 16)}…); sent again`);
      }
    }
    if (request.mode !== undefined) fs.chmodSync(part, request.mode);
    if (request.mtimeMs !== undefined) fs.utimesSync(part, new Date(), new Date(request.mtimeMs));
    return run({ kind: 'move', input: { sources: [part], target: real, onConflict: overwrite ? 'overwrite' : 'rename', verify: true, ...(request.fullHash ? { fullHash: request.fullHash } : {}) } });
  }
}

/** The asking side: delivers this library's remote jobs to their devices, in order. */
export class Delivery {
  private readonly jobs: JobStore;
  private readonly audit: AuditLog;
  private readonly changes: RemoteChanges;
  /** Devices being delivered to now. */
  private readonly busy = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly library: Library,
    private readonly channelTo: (deviceId: string) => ActionChannel | undefined,
    /** Waits until this device's mirror of the device has applied `length` blocks of its log. */
    private readonly mirrored: (deviceId: string, length: number) => Promise<void>,
    private readonly onSettled?: (deviceId: string) => void,
  ) {
    this.jobs = new JobStore(library.db);
    this.audit = new AuditLog(library.db);
    this.changes = new RemoteChanges(library);
  }

  start(): void {
    this.timer = setInterval(() => this.kick(), config.remoteDeliveryTickMs);
    // Applied changes a stopped process still showed as pending (waiting for the mirror): cleared once it has them.
    try {
      for (const left of this.changes.appliedLeftovers()) this.clearWhenMirrored(left.deviceId, left.logLength, left.jobId);
    } catch (err) {
      log.warn({ op: 'actions', err: String(err) }, 'applied changes still shown as pending stay so until the next start');
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  /** Starts delivering to every online device with queued jobs (called on a tick and on connect). */
  kick(): void {
    if (this.stopped) return;
    let devices: string[];
    try {
      devices = this.jobs.remoteDevicesWaiting();
    } catch (err) {
      return log.warn({ op: 'actions', err: String(err) }, 'cannot read the queued remote jobs');
    }
    for (const deviceId of devices) {
      if (this.busy.has(deviceId) || !this.channelTo(deviceId)) continue;
      this.busy.add(deviceId);
      this.drain(deviceId)
        .catch((err: unknown) => log.warn({ op: 'actions', device: deviceId, err: String(err) }, 'delivery stopped'))
        .finally(() => this.busy.delete(deviceId));
    }
  }

  /**
   * Delivers the device's jobs oldest first, however many wait (a `cp -r` makes one per file
   * and folder, and a file must not go before the mkdir of its folder), until none is left
   * or the device goes offline.
   */
  private async drain(deviceId: string): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const next = this.jobs.oldestRemote(deviceId);
      // A paused job (its file is open for writing again, or paused by the user) holds back the later ones: order matters.
      if (!next || next.status === 'paused' || (next.status === 'running' && !next.interrupted)) return;
      const channel = this.channelTo(deviceId);
      if (!channel) return;
      // A busy library throws here, nothing taken: the next tick tries again.
      if (!this.claim(next)) return;
      const settled = await this.deliver(next, remoteOf(next)!, channel);
      if (!settled) return;
    }
  }

  /** Takes the job for this process and audits the delivery's start, in one transaction; false when another took it first. */
  private claim(job: Job): boolean {
    return this.library.db.transaction(() => {
      if (!this.jobs.claim(job.id, ownerToken(), { status: job.status, owner: job.owner })) return false;
      this.audit.append({ actor: 'job', action: job.kind, status: 'Running', target: job.payload.target, details: { device: remoteOf(job)!.device, run: job.progress.runs + 1 }, jobId: job.id });
      return true;
    }).immediate();
  }

  /**
   * Writes a delivery's bookkeeping (`change`, in one transaction), waiting out another
   * process that holds the library past the busy timeout. False when the node stopped
   * meanwhile: the job stays taken by this process, and once it is gone is delivered again
   * at the next start (the device answers a request it ran from its record).
   */
  private record(job: Job, what: string, change: () => void): Promise<boolean> {
    return whenLibraryFree({ op: 'actions', job: job.id, record: what }, () => this.library.db.transaction(change).immediate(), () => this.stopped);
  }

  /** Sends one job and settles it; false when it stays queued (the device went away, or a retry is due). */
  private async deliver(job: Job, remote: RemoteJobInfo, channel: ActionChannel): Promise<boolean> {
    const { op, device } = remote;
    const progress = { ...emptyProgress([]), runs: job.progress.runs + 1 };
    const request: ActionRequest = { id: job.id, op };
    let staged: Partial<ActionRequest> | undefined;
    try {
      if (op.op === 'copy') staged = this.describeStaged(op.pendingId);
      if (op.op === 'protect') Object.assign(request, { size: op.size, contentId: op.contentId, fullHash: op.fullHash, mode: op.mode, mtimeMs: op.mtimeMs });
    } catch (err) {
      const error = `the bytes to send are gone: ${err instanceof Error ? err.message : String(err)}`;
      return this.record(job, 'failed', () => {
        this.changes.refused(job.id);
        this.jobs.settle(job.id, 'failed', progress, error);
        this.audit.append({ actor: 'job', action: job.kind, status: 'Failed', target: job.payload.target, details: { device, error }, jobId: job.id });
      });
    }
    if (op.op === 'copy' && staged) {
      Object.assign(request, staged);
      const contentId = staged.contentId;
      // Recorded so the block server serves the staged bytes by their content id.
      if (contentId && !(await this.record(job, 'content id', () => this.changes.pending.setContentId(op.pendingId, contentId)))) return false;
    }
    let reply: ActionReply;
    try {
      reply = await channel.request(request);
    } catch (err) {
      const error = `waiting for ${device}: ${err instanceof Error ? err.message : String(err)}`;
      await this.record(job, 'offline', () => {
        this.jobs.settle(job.id, 'queued', progress, error);
        this.audit.append({ actor: 'job', action: job.kind, status: 'Paused', target: job.payload.target, details: { reason: 'offline', device }, jobId: job.id });
      });
      return false;
    }
    if (!reply.ok && !reply.final) {
      if (!(await this.record(job, 'retry', () => this.jobs.settle(job.id, 'queued', progress, reply.message)))) return false;
      await new Promise((r) => setTimeout(r, config.remoteRetryMs));
      return true;
    }
    if (reply.ok) {
      // Keep showing the pending change until the device's log (with the change) is mirrored
      // here: cleared before, the mount would show the tree as it was (a renamed file back
      // under its old name) until the mirror caught up.
      const mirrored = await this.mirrored(remote.deviceId, reply.logLength).then(() => true, () => false);
      const settled = await this.record(job, 'completed', () => {
        if (mirrored) this.changes.clear(job.id);
        this.jobs.settle(job.id, 'completed', { ...progress, filesDone: 1, filesTotal: 1 });
        // The log length goes in the trail: a start after a stopped process clears the rows once mirrored (appliedLeftovers).
        this.audit.append({ actor: 'job', action: job.kind, status: 'Completed', target: job.payload.target, details: { device, message: reply.message, logLength: reply.logLength }, jobId: job.id });
      });
      if (!settled) return false;
      if (!mirrored) this.clearWhenMirrored(remote.deviceId, reply.logLength, job.id);
      log.info({ op: 'actions', job: job.id, device }, 'applied on the device');
    } else {
      let error = '';
      const settled = await this.record(job, 'refused', () => {
        const kept = this.changes.refused(job.id);
        error = `${device} refused: ${reply.message}${kept.length ? `; the written bytes are kept in ${kept.join(', ')}` : ''}`;
        this.jobs.settle(job.id, 'failed', progress, error);
        this.audit.append({ actor: 'job', action: job.kind, status: 'Failed', target: job.payload.target, details: { device, error }, jobId: job.id });
      });
      if (!settled) return false;
      log.warn({ op: 'actions', job: job.id, device, err: error }, 'refused by the device');
    }
    this.onSettled?.(remote.deviceId);
    return true;
  }

  /** Clears a delivered job's pending rows once the device's mirror has its change, asking again until it has or the node stops. */
  private clearWhenMirrored(deviceId: string, length: number, jobId: number): void {
    log.debug({ op: 'actions', job: jobId, device: deviceId, length }, 'mirror not caught up yet; the change stays shown as pending');
    const retry = () => {
      if (this.stopped) return;
      this.mirrored(deviceId, length).then(
        () =>
          whenLibraryFree({ op: 'actions', job: jobId, record: 'clear' }, () => this.changes.clear(jobId), () => this.stopped).catch((err: unknown) =>
            log.warn({ op: 'actions', job: jobId, err: String(err) }, 'the pending change of a delivered job could not be cleared'),
          ),
        () => setTimeout(retry, config.remoteRetryMs).unref(),
      );
    };
    setTimeout(retry, config.remoteRetryMs).unref();
  }

  /** Size, content id, full hash, mode and mtime of a staged file (the caller records its content id, for the block server). */
  private describeStaged(pendingId: number): Partial<ActionRequest> {
    const staged = this.changes.stagedPath(pendingId);
    const st = fs.statSync(staged);
    if (st.size === 0) return { size: 0, mode: st.mode & 0o7777, mtimeMs: Math.round(st.mtimeMs) };
    const identity = contentHashOfFile(staged);
    if (!identity) throw new SdError('IO', `cannot read the staged file ${staged}`);
    return { size: st.size, contentId: identity.contentId, fullHash: fullHashOfFile(staged), mode: st.mode & 0o7777, mtimeMs: Math.round(st.mtimeMs) };
  }
}

/** Whether a regular file of this size and full BLAKE3 is at `file` (an empty file needs no hash); read off the mount's thread. */
async function sameBytes(file: string, size: number, fullHash: string | undefined): Promise<boolean> {
  const st = statOrUndefined(file);
  if (!st?.isFile() || st.size !== size) return false;
  return size === 0 || (fullHash !== undefined && (await fullHashAsync(file, jobOptions.copyChunkBytes)) === fullHash);
}
