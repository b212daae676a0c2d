// Resolves a path inside the mount to what it names: the root, the .content folder, the
// .tags folders, .guardian/at-risk and .search/<query> with their links, a device, or a
// place inside a location (with its real path when the device is this one).
// Pure path logic over the Namespace; no file system calls.
import path from 'node:path';
import type { Device } from '../vdfs/device.js';
import type { Location } from '../vdfs/locations.js';
import type { Namespace } from '../vdfs/namespace.js';
import { DT_DIR, DT_LNK, DT_UNKNOWN, listingOfType } from './listing.js';
import type { Listing } from './types.js';

export const CONTENT_DIR = '.content';
export const TAGS_DIR = '.tags';
export const GUARDIAN_DIR = '.guardian';
export const AT_RISK_DIR = 'at-risk';
export const SEARCH_DIR = '.search';
/** /.search/<query> lists at most this many results. */
const SEARCH_LINKS_MAX = 1000;
/** A query's links are kept this long between two looks (a listing evaluates it again), for this many queries. */
const SEARCH_TTL_MS = 2000;
const SEARCH_CACHED_MAX = 32;
/** /.guardian/at-risk lists at most this many files (a listing, not an export). */
const AT_RISK_LINKS_MAX = 10_000;
/** The at-risk links are computed over the whole library: at most this often. */
const AT_RISK_TTL_MS = 2000;

/** What the tree needs of the guardian: the files whose content is at risk. */
export interface AtRiskSource {
  atRiskFiles(limit: number): number[];
}

/** What the tree needs of search: the entries a query (a sentence or filters) finds, best first; throws when it cannot be read. */
export type SearchSource = (query: string, limit: number) => number[];

export type Node =
  | { kind: 'root' }
  | { kind: 'content-dir' }
  | { kind: 'content'; contentId: string; real: string }
  | { kind: 'tags-dir' }
  | { kind: 'tag'; tag: string }
  | { kind: 'guardian-dir' }
  | { kind: 'at-risk-dir' }
  | { kind: 'search-dir' }
  | { kind: 'search'; query: string }
  /** A tagged entry in /.tags/<tag>/, an at-risk one in /.guardian/at-risk/, a result in /.search/<query>/: a symlink, relative, into its place in the tree. */
  | { kind: 'link'; target: string }
  | { kind: 'device'; device: Device }
  | { kind: 'local'; device: Device; location: Location; rel: string[]; real: string }
  | { kind: 'remote'; device: Device; location: Location; rel: string[] };

export class Tree {
  private atRisk: { at: number; links: Map<string, string> } | undefined;
  private readonly searches = new Map<string, { at: number; links: Map<string, string> }>();

  constructor(
    private readonly ns: Namespace,
    private readonly localDeviceId: string,
    private readonly guardian?: AtRiskSource,
    private readonly search?: SearchSource,
  ) {}

  /** A query's result links (undefined when it cannot be read), evaluated again after SEARCH_TTL_MS or when `fresh`. */
  private searchLinks(query: string, fresh = false): Map<string, string> | undefined {
    const now = Date.now();
    const cached = this.searches.get(query);
    if (cached && !fresh && now - cached.at <= SEARCH_TTL_MS) return cached.links;
    // A name starting with a dot is a file manager's probe (.hidden, .directory), never a query.
    if (!this.search || query.startsWith('.')) return undefined;
    let links: Map<string, string>;
    try {
      links = this.ns.linksTo(this.search(query, SEARCH_LINKS_MAX));
    } catch {
      return undefined;
    }
    this.searches.delete(query);
    this.searches.set(query, { at: now, links });
    if (this.searches.size > SEARCH_CACHED_MAX) this.searches.delete(this.searches.keys().next().value!);
    return links;
  }

  private atRiskLinks(): Map<string, string> {
    const now = Date.now();
    if (!this.atRisk || now - this.atRisk.at > AT_RISK_TTL_MS) {
      this.atRisk = { at: now, links: this.guardian ? this.ns.linksTo(this.guardian.atRiskFiles(AT_RISK_LINKS_MAX)) : new Map() };
    }
    return this.atRisk.links;
  }

  /** What a mount path names, or undefined when nothing is there. */
  resolve(mountPath: string): Node | undefined {
    if (mountPath === '/') return { kind: 'root' };
    const parts = mountPath.split('/');
    parts.shift(); // the leading ''
    const [first, second, ...rest] = parts as [string, ...string[]];
    if (first === CONTENT_DIR) {
      if (second === undefined) return { kind: 'content-dir' };
      if (rest.length > 0 || !/^[0-9a-f]{16}$/.test(second)) return undefined;
      const real = this.ns.localCopy(second, this.localDeviceId);
      return real === undefined ? undefined : { kind: 'content', contentId: second, real };
    }
    if (first === TAGS_DIR) {
      if (second === undefined) return { kind: 'tags-dir' };
      if (!this.ns.tagNames().includes(second)) return undefined;
      if (rest.length === 0) return { kind: 'tag', tag: second };
      const target = rest.length === 1 ? this.ns.taggedLinks(second).get(rest[0]!) : undefined;
      return target === undefined ? undefined : { kind: 'link', target: `../../${target}` };
    }
    if (first === GUARDIAN_DIR) {
      if (second === undefined) return { kind: 'guardian-dir' };
      if (second !== AT_RISK_DIR) return undefined;
      if (rest.length === 0) return { kind: 'at-risk-dir' };
      const target = rest.length === 1 ? this.atRiskLinks().get(rest[0]!) : undefined;
      return target === undefined ? undefined : { kind: 'link', target: `../../${target}` };
    }
    if (first === SEARCH_DIR) {
      if (second === undefined) return { kind: 'search-dir' };
      const links = this.searchLinks(second);
      if (!links) return undefined;
      if (rest.length === 0) return { kind: 'search', query: second };
      const target = rest.length === 1 ? links.get(rest[0]!) : undefined;
      return target === undefined ? undefined : { kind: 'link', target: `../../${target}` };
    }
    const device = this.ns.device(first);
    if (!device) return undefined;
    if (second === undefined) return { kind: 'device', device };
    const location = this.ns.location(device, second);
    if (!location) return undefined;
    if (device.id === this.localDeviceId) {
      return { kind: 'local', device, location, rel: rest, real: rest.length ? path.join(location.rootPath, ...rest) : location.rootPath };
    }
    return { kind: 'remote', device, location, rel: rest };
  }

  /**
   * Names in a virtual folder (root, device, .content), with their types: the folders and
   * links of the virtual tree are so by construction. A device's locations are not typed
   * (a location's root is what its disk or its device's index holds), nor .content's names
   * (each is answered by a stat of a local copy, which the index may be behind).
   */
  virtualChildren(node: Node): Listing {
    if (node.kind === 'root') return listingOfType([CONTENT_DIR, TAGS_DIR, GUARDIAN_DIR, SEARCH_DIR, ...this.ns.devices().map((d) => d.slug)], DT_DIR);
    if (node.kind === 'search') return listingOfType([...(this.searchLinks(node.query, true)?.keys() ?? [])], DT_LNK); // listed again: evaluated again
    if (node.kind === 'guardian-dir') return listingOfType([AT_RISK_DIR], DT_DIR);
    if (node.kind === 'at-risk-dir') {
      this.atRisk = undefined; // listed again: evaluated again
      return listingOfType([...this.atRiskLinks().keys()], DT_LNK);
    }
    if (node.kind === 'tags-dir') return listingOfType(this.ns.tagNames(), DT_DIR);
    if (node.kind === 'tag') return listingOfType([...this.ns.taggedLinks(node.tag).keys()], DT_LNK);
    if (node.kind === 'device') return listingOfType(this.ns.locations(node.device).map((l) => l.name), DT_UNKNOWN);
    if (node.kind === 'content-dir') return listingOfType(this.ns.localContentIds(this.localDeviceId, 100_000), DT_UNKNOWN);
    return listingOfType([], DT_UNKNOWN);
  }
}
