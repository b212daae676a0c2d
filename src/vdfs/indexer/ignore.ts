// Which names the indexer and watcher skip: built-in system and build folders, hidden
// files when a location asks, the location's own rules and .gitignore files found in
// the tree (each applies to its own folder and below).
import fs from 'node:fs';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { DEFAULT_IGNORED_NAMES } from '../../config.js';
import type { Location } from '../locations.js';

const IGNORED_NAMES = new Set(DEFAULT_IGNORED_NAMES);

interface Matcher {
  /** Folder the rules belong to, relative to the location root ('' for the root). */
  base: string;
  rules: Ignore;
}

export class IgnoreRules {
  private constructor(
    private readonly includeHidden: boolean,
    private readonly matchers: readonly Matcher[],
  ) {}

  static forLocation(location: Location): IgnoreRules {
    const matchers: Matcher[] = [];
    if (location.ignoreRules.length > 0) matchers.push({ base: '', rules: ignore().add(location.ignoreRules) });
    return new IgnoreRules(location.includeHidden, matchers);
  }

  /** The rules that hold inside dirRel, with the .gitignore files of every folder from the root down. */
  static forDirectory(location: Location, dirRel: string): IgnoreRules {
    let rules = IgnoreRules.forLocation(location);
    const parts = dirRel === '' ? [] : dirRel.split('/');
    for (let i = 0; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      rules = rules.enter(path.join(location.rootPath, rel), rel, hasGitignore(path.join(location.rootPath, rel)));
    }
    return rules;
  }

  /** Rules for the children of a folder: adds that folder's .gitignore when it has one. */
  enter(dirAbs: string, dirRel: string, folderHasGitignore: boolean): IgnoreRules {
    if (!folderHasGitignore) return this;
    let text: string;
    try {
      text = fs.readFileSync(path.join(dirAbs, '.gitignore'), 'utf8');
    } catch {
      return this;
    }
    return new IgnoreRules(this.includeHidden, [...this.matchers, { base: dirRel, rules: ignore().add(text) }]);
  }

  /** Whether the child `name` of folder dirRel is skipped. */
  ignores(dirRel: string, name: string, isDir: boolean): boolean {
    if (IGNORED_NAMES.has(name)) return true;
    if (!this.includeHidden && name.startsWith('.')) return true;
    if (this.matchers.length === 0) return false;
    const rel = dirRel === '' ? name : `${dirRel}/${name}`;
    for (const m of this.matchers) {
      const sub = m.base === '' ? rel : rel.slice(m.base.length + 1);
      try {
        if (m.rules.ignores(isDir ? `${sub}/` : sub)) return true;
      } catch {
        // A name the rules cannot parse as a path is simply not matched by them.
      }
    }
    return false;
  }
}

function hasGitignore(dirAbs: string): boolean {
  return fs.existsSync(path.join(dirAbs, '.gitignore'));
}

/** Whether a relative path crosses a built-in ignored folder (for the watcher's filter). */
export function crossesIgnoredName(rel: string): boolean {
  return rel.split('/').some((part) => IGNORED_NAMES.has(part));
}
